"""Tag heads: training on synthetic fused vectors, save/load round trip, mismatch refusal, tagger fallback."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tagging.errors import ModelLoadError
from tagging.extractors.base import AudioCues, Features
from tagging.tags.heads import HeadConfig, HeadMismatchError, TagHead, calibrate_threshold, split_holdout, train_head
from tagging.tags.tagger import Tagger
from tagging.tags.taxonomy import load_taxonomy

EXTRACTORS = {"frames": "fake-frames@1", "audio": "fake-audio@1", "text": "fake-text@1"}


def synthetic(n: int = 240, dim: int = 64, cats: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Items whose label is the argmax of a hidden linear map of their (L2-normalised) vector."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(cats, dim))
    x = rng.normal(size=(n, dim))
    y = np.zeros((n, cats), np.int8)
    y[np.arange(n), np.argmax(x @ w.T, axis=1)] = 1
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def trained() -> tuple[TagHead, np.ndarray, np.ndarray]:
    x, y = synthetic()
    head = train_head(x, y, ["a", "b", "c", "d"], "tax@1+abc", EXTRACTORS, {"frames": 1.0}, HeadConfig(seed=3))
    return head, x, y


def test_head_learns_linear_structure(trained: tuple[TagHead, np.ndarray, np.ndarray]) -> None:
    head, _, _ = trained
    m = head.metrics
    assert m["n_holdout"] >= 50 and m["n_train"] + m["n_holdout"] == 240
    assert m["holdout_top1"] > 0.6  # chance is 0.25
    # fresh items from the same hidden map (synthetic() draws w first from seed 0)
    w = np.random.default_rng(0).normal(size=(4, 64))
    xn = np.random.default_rng(99).normal(size=(300, 64))
    truth = np.argmax(xn @ w.T, axis=1)
    xn /= np.linalg.norm(xn, axis=1, keepdims=True)
    assert (head.predict_proba(xn).argmax(axis=1) == truth).mean() > 0.6
    for cid, c in m["categories"].items():
        assert c["calibrated"] and 0.0 < head.thresholds[cid] < 1.0
        assert c["recall"] is not None and c["recall"] > 0.4


def test_save_load_round_trip(trained: tuple[TagHead, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    head, x, _ = trained
    d = head.save(tmp_path / "head")
    assert {p.name for p in d.iterdir()} == {"weights.safetensors", "config.json", "manifest.json"}
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["taxonomy_id"] == "tax@1+abc" and manifest["feature_dim"] == 64
    assert manifest["extractors"] == EXTRACTORS and set(manifest["thresholds"]) == {"a", "b", "c", "d"}
    assert "numpy" in manifest["libraries"] and "holdout_top1" in manifest["metrics"]
    loaded = TagHead.load(d, taxonomy_id="tax@1+abc", feature_dim=64, extractors=EXTRACTORS, fused_weights={"frames": 1.0})
    np.testing.assert_array_equal(loaded.predict_proba(x), head.predict_proba(x))
    assert loaded.thresholds == pytest.approx(head.thresholds) and loaded.categories == head.categories


def test_load_refuses_mismatch_and_bad_files(trained: tuple[TagHead, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    head, _, _ = trained
    d = head.save(tmp_path / "head")
    with pytest.raises(HeadMismatchError, match="taxonomy"):
        TagHead.load(d, taxonomy_id="other@1+xyz")
    with pytest.raises(HeadMismatchError, match="1857"):
        TagHead.load(d, feature_dim=1857)
    with pytest.raises(HeadMismatchError, match="extractors"):
        TagHead.load(d, extractors={**EXTRACTORS, "frames": "clip@1+x"})
    with pytest.raises(HeadMismatchError, match="fused weights"):
        TagHead.load(d, fused_weights={"frames": 0.5})
    (d / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match=str(d)):
        TagHead.load(d)
    with pytest.raises(ModelLoadError):
        TagHead.load(tmp_path / "missing")


def test_split_and_threshold_helpers() -> None:
    y = np.zeros((12, 3), np.int8)
    y[:8, 0] = 1
    y[8:11, 1] = 1
    y[11, 2] = 1  # a single example: must stay in training
    train, held = split_holdout(y, 0.25, seed=1)
    assert 11 in train and len(held) == 3 and set(train) | set(held) == set(range(12))
    assert y[train].sum(axis=0).min() >= 1
    assert np.array_equal(split_holdout(y, 0.25, seed=1)[1], held)  # seeded
    t, ok = calibrate_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.6, 0.9]), 2, 0.5)
    assert ok and 0.3 < t < 0.6
    assert calibrate_threshold(np.array([0, 0, 0, 1]), np.array([0.1, 0.3, 0.6, 0.9]), 2, 0.5) == (0.5, False)


def test_train_head_skips_categories_without_examples() -> None:
    x, y = synthetic(n=80, cats=2, seed=1)
    y = np.concatenate([y, np.zeros((80, 1), np.int8)], axis=1)  # third category: no examples
    head = train_head(x, y, ["a", "b", "never"], "t", EXTRACTORS)
    assert head.categories == ["a", "b"]
    with pytest.raises(ValueError):
        train_head(x, np.zeros_like(y), ["a", "b", "never"], "t", EXTRACTORS)


def test_tagger_uses_head_and_falls_back_to_zero_shot() -> None:
    """Head categories get the head's calibrated score and evidence; others keep their zero-shot score."""
    tax = load_taxonomy()
    dim = 8
    weight = np.zeros((2, dim), np.float32)
    weight[0, 0] = 10.0  # "sports" fires on feature 0
    weight[1, 1] = 10.0  # "music" fires on feature 1
    head = TagHead(["sports", "music"], weight, np.array([-5.0, -5.0], np.float32), {"sports": 0.3, "music": 0.8},
                   tax.taxonomy_id, dim, EXTRACTORS)
    tagger = Tagger(tax)
    audio = Features("a", "audio", np.ones(4, np.float32) / 2, AudioCues(music_score=0.2, speech_ratio=0.9))
    x = np.zeros(dim, np.float32)
    x[0] = 1.0
    zero_shot = {t.id: t.score for t in tagger.tag({"audio": audio}, {}, top_k=0)}
    tagger.set_head(head)
    tags = {t.id: t for t in tagger.tag({"audio": audio}, {}, top_k=0, head_input=x)}
    p = float(head.predict_proba(x)[0, 0])
    assert tags["sports"].evidence["head"]["prob"] == pytest.approx(p, abs=1e-4)
    assert tags["sports"].score == pytest.approx(0.5 + 0.5 * (p - 0.3) / 0.7, abs=1e-4)
    assert tags["music"].score < 0.5 and tags["music"].evidence["head"]["zero_shot"] == pytest.approx(zero_shot["music"], abs=1e-4)
    assert tags["talk"].score == pytest.approx(zero_shot["talk"]) and "head" not in tags["talk"].evidence
    # without the fused vector the head is not applied
    assert "head" not in tagger.tag({"audio": audio}, {}, top_k=0)[0].evidence
    other = TagHead(["sports"], weight[:1], np.zeros(1, np.float32), {}, "other@1+x", dim, EXTRACTORS)
    with pytest.raises(HeadMismatchError):
        tagger.set_head(other)


class _FakeResult(SimpleNamespace):
    pass


class _FakePipeline:
    """Analyze returns a fused vector that encodes the file's label (its name prefix)."""

    def __init__(self) -> None:
        tax = load_taxonomy()
        self.tagger = SimpleNamespace(taxonomy=tax)
        self.config = SimpleNamespace(fused_weights={"frames": 1.0, "audio": 0.5, "text": 1.0})
        self.rng = np.random.default_rng(0)

    def analyze(self, path: Path, video_id: str | None = None, caption: object = None, metadata: object = None) -> _FakeResult:
        x = self.rng.normal(scale=0.1, size=16)
        x[0 if path.name.startswith("dog") else 1] += 1.0
        return _FakeResult(fused=x / np.linalg.norm(x), extractors=EXTRACTORS, tags=[])


def test_train_tags_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tagging.cli import tags as tagcli

    rows = ["file\tlabel"]
    for i in range(12):
        name = f"{'dog' if i % 2 else 'gig'}{i}.mp4"
        (tmp_path / name).write_bytes(b"x")
        rows.append(f"{name}\t{'animals' if i % 2 else 'music'}")
    (tmp_path / "labels.tsv").write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(tagcli, "make_pipeline", lambda args, tag_head=None: _FakePipeline())
    parser = argparse.ArgumentParser()
    tagcli.add_commands(parser.add_subparsers())
    out = tmp_path / "models" / "head"
    args = parser.parse_args(["train-tags", str(tmp_path / "labels.tsv"), "--out", str(out), "--seed", "1"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "held-out top-1: 1.000" in printed and "| animals |" in printed
    head = TagHead.load(out, taxonomy_id=load_taxonomy().taxonomy_id, feature_dim=16, extractors=EXTRACTORS)
    assert sorted(head.categories) == ["animals", "music"]


def test_pipeline_loads_head_and_refuses_a_mismatch(pipeline, clips: dict[str, Path], tmp_path: Path) -> None:
    """End to end: a head saved for the pipeline's taxonomy/extractors scores its categories in analyze()."""
    from tagging.pipeline import Pipeline, PipelineConfig

    ids = {m: e.extractor_id for m, e in pipeline.extractors.items()}
    dim = sum(e.dim for e in pipeline.extractors.values())
    tax_id = pipeline.tagger.taxonomy.taxonomy_id
    head = TagHead(["food"], np.zeros((1, dim), np.float32), np.array([3.0], np.float32), {"food": 0.5}, tax_id, dim, ids,
                   dict(pipeline.config.fused_weights))
    d = head.save(tmp_path / "head")
    with_head = Pipeline(PipelineConfig(tag_head=str(d)))
    r = with_head.analyze(clips["good"])
    food = next(t for t in r.tags if t.id == "food")
    assert food.evidence["head"]["prob"] == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-4) and r.tags[0].id == "food"
    TagHead(["food"], np.zeros((1, dim), np.float32), np.zeros(1, np.float32), {}, tax_id, dim, {**ids, "frames": "clip@1+x"}).save(d)
    with pytest.raises(HeadMismatchError, match="extractors"):
        Pipeline(PipelineConfig(tag_head=str(d)))
