"""Evaluation: labels TSV parsing (label map, unknown ids, skipped rows) and the metrics' arithmetic."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tagging.errors import CorruptMedia, TaxonomyError
from tagging.tags.evaluate import EvalItem, LabelsError, evaluate, load_label_map, read_labels, resolve_labels, score_items
from tagging.tags.taxonomy import load_taxonomy

IDS = load_taxonomy().ids


def test_metrics_arithmetic_on_a_tiny_set() -> None:
    items = [
        EvalItem("a.mp4", ["food"], [("food", 0.9), ("travel", 0.2), ("music", 0.1)]),  # top-1 hit
        EvalItem("b.mp4", ["music"], [("dance", 0.7), ("music", 0.6), ("talk", 0.1)]),  # top-3 hit; music >= 0.5
        EvalItem("c.mp4", ["animals"], [("dance", 0.3), ("food", 0.2), ("talk", 0.1), ("animals", 0.05)]),  # miss
        EvalItem("d.mp4", ["travel", "vehicles"], [("vehicles", 0.4), ("nature", 0.3)]),  # top-1 hit (either id)
    ]
    r = score_items(items, threshold=0.5, worst=2)
    assert r.n_items == 4 and r.top1 == pytest.approx(2 / 4) and r.top3 == pytest.approx(3 / 4)
    pc = r.per_category
    # predicted: a {food}, b {dance, music}, c {dance}, d {vehicles}
    assert pc["food"] == {"support": 1, "predicted": 1, "true_positives": 1, "precision": 1.0, "recall": 1.0}
    assert pc["dance"]["predicted"] == 2 and pc["dance"]["precision"] == 0.0 and pc["dance"]["recall"] is None
    assert pc["music"]["precision"] == 1.0 and pc["music"]["recall"] == 1.0
    assert pc["animals"]["recall"] == 0.0 and pc["animals"]["precision"] is None
    assert pc["travel"]["recall"] == 0.0 and pc["vehicles"]["recall"] == 1.0
    assert "nature" not in pc and "talk" not in pc  # neither true nor predicted
    # worst two by recall (ties: larger support, then id): animals, travel
    assert r.confusion == {"animals": {"dance": 1}, "travel": {"vehicles": 1}}
    md = r.table()
    assert "| top-1 accuracy | 0.500 (2/4) |" in md and "| top-3 accuracy | 0.750 (3/4) |" in md
    assert "| animals | dance x1 |" in md
    json.dumps(r.to_dict())
    empty = score_items([])
    assert empty.n_items == 0 and empty.top1 == 0.0


def test_resolve_labels_and_label_map(tmp_path: Path) -> None:
    assert resolve_labels("food; travel", IDS) == ["food", "travel"]
    assert resolve_labels("music,music", IDS) == ["music"]
    m = tmp_path / "map.json"
    m.write_text(json.dumps({"_comment": "x", "Street/Urban": ["travel", "vehicles"], "cooking": "food"}))
    lm = load_label_map(m, IDS)
    assert lm == {"street/urban": ["travel", "vehicles"], "cooking": ["food"]}
    assert resolve_labels("street/urban", IDS, lm) == ["travel", "vehicles"]
    assert resolve_labels("cooking, music", IDS, lm) == ["food", "music"]
    with pytest.raises(ValueError, match="'skateboarding'"):
        resolve_labels("skateboarding", IDS, lm)
    m.write_text(json.dumps({"cooking": ["cuisine"]}))
    with pytest.raises(LabelsError, match="cuisine"):
        load_label_map(m, IDS)


def _labels_dir(tmp_path: Path) -> Path:
    for name in ("video/a.mp4", "video/b.mkv", "audio/s.wav", "image/cat.png", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "dataset").mkdir()
    rows = [
        "# shared clips",
        "file\tlabel\tsource",
        "video/a.mp4\tcooking\tsomewhere",
        "",
        "video/b.mkv\tmusic; dance\tx",
        "audio/s.wav\tspeech\tx",
        "image/cat.png\tcat\tx",
        "dataset/\tmovie ratings\tx",
        "video/missing.mp4\tfood\tx",
        "notes.txt\tfood\tx",
    ]
    (tmp_path / "labels.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "map.json").write_text(json.dumps({"cooking": ["food"], "speech": ["talk"]}))
    return tmp_path


def test_read_labels_skips_non_videos(tmp_path: Path) -> None:
    d = _labels_dir(tmp_path)
    lm = load_label_map(d / "map.json", IDS)
    ls = read_labels(d / "labels.tsv", IDS, lm)
    assert [(r.file, r.labels, r.line) for r in ls.rows] == [(d / "video/a.mp4", ["food"], 3), (d / "video/b.mkv", ["music", "dance"], 5)]
    reasons = {s.file: s.reason for s in ls.skipped}
    assert set(reasons) == {"audio/s.wav", "image/cat.png", "dataset/", "video/missing.mp4", "notes.txt"}
    assert "audio" in reasons["audio/s.wav"] and "image" in reasons["image/cat.png"] and "directory" in reasons["dataset/"]
    with_audio = read_labels(d / "labels.tsv", IDS, lm, include_audio=True)
    assert [r.labels for r in with_audio.rows] == [["food"], ["music", "dance"], ["talk"]]
    # without the map, "cooking" is not a taxonomy id: a typed error naming file and line
    with pytest.raises(TaxonomyError, match=r"labels\.tsv:3.*cooking"):
        read_labels(d / "labels.tsv", IDS)
    with pytest.raises(LabelsError):
        read_labels(d / "nope.tsv", IDS)


class _FakePipeline:
    """Returns canned tags per file name; raises a typed error for 'bad' files."""

    def __init__(self, tags: dict[str, list[tuple[str, float]]]) -> None:
        self.tags = tags
        self.captions: dict[str, object] = {}

    def analyze(self, path: Path, video_id: str | None = None, caption: object = None, metadata: object = None) -> SimpleNamespace:
        self.captions[path.name] = caption
        if path.name not in self.tags:
            raise CorruptMedia(str(path), "truncated")
        return SimpleNamespace(tags=[SimpleNamespace(id=i, score=s) for i, s in self.tags[path.name]])


def test_evaluate_runs_pipeline_with_captions(tmp_path: Path) -> None:
    d = _labels_dir(tmp_path)
    ls = read_labels(d / "labels.tsv", IDS, load_label_map(d / "map.json", IDS))
    fake = _FakePipeline({"a.mp4": [("food", 0.8)]})  # b.mkv fails to decode
    r = evaluate(fake, ls, captions={"a.mp4": "pancakes!"})
    assert fake.captions == {"a.mp4": "pancakes!", "b.mkv": None}
    assert r.n_items == 1 and r.top1 == 1.0
    assert len(r.skipped) == 6 and any("CorruptMedia" in s.reason for s in r.skipped)


def test_evaluate_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tagging.cli import tags as tagcli

    d = _labels_dir(tmp_path)
    (d / "caps.json").write_text(json.dumps({"b.mkv": {"title": "drum solo", "hashtags": ["drums"]}}))
    fake = _FakePipeline({"a.mp4": [("travel", 0.6), ("food", 0.5)], "b.mkv": [("music", 0.9)]})
    fake.tagger = SimpleNamespace(taxonomy=load_taxonomy())
    monkeypatch.setattr(tagcli, "make_pipeline", lambda args, tag_head=None: fake)
    parser = argparse.ArgumentParser()
    tagcli.add_commands(parser.add_subparsers())
    out = d / "report.json"
    args = parser.parse_args(["evaluate", str(d / "labels.tsv"), "--label-map", str(d / "map.json"),
                              "--captions", str(d / "caps.json"), "--json", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "| top-1 accuracy | 0.500 (1/2) |" in printed and "| top-3 accuracy | 1.000 (2/2) |" in printed
    assert fake.captions["b.mkv"] == {"title": "drum solo", "hashtags": ["drums"]}
    report = json.loads(out.read_text())
    assert report["n_items"] == 2 and report["confusion"] == {"dance": {"music": 1}}  # recall-1 categories left out
