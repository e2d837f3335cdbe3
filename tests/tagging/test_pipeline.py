"""End to end on generated media: analyse, ingest into LanceDB, bad input in a batch, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tagging.cli.main import main
from tagging.errors import CorruptMedia, InvalidVideoId, LimitExceeded, MediaError, MediaNotFound, VideoOpenFailure
from tagging.media import MediaLimits
from tagging.pipeline import Pipeline, caption_text, default_video_id
from tagging.store.catalog import Catalog


def test_analyze_good_clip(pipeline: Pipeline, clips: dict[str, Path]) -> None:
    r = pipeline.analyze(clips["good"], caption={"title": "Piano practice", "description": "my new song", "hashtags": ["music"]})
    assert r.caption == "Piano practice. my new song. #music"
    assert all(r.features[m].present for m in ("frames", "audio", "text"))
    assert r.fused.shape == (1280 + 193 + 384,) and abs(float(np.linalg.norm(r.fused)) - 1) < 1e-4
    assert r.tags and r.tags[0].id == "music"
    assert {"probe", "decode", "frames", "audio", "text", "tagging"} <= set(r.timings)
    assert r.extractors["frames"].startswith("effnet-lite0@")
    json.dumps(r.summary())


@pytest.mark.parametrize("name, present", [("audio_only", {"frames": False, "audio": True}),
                                           ("video_only", {"frames": True, "audio": False}),
                                           ("rotated", {"frames": True, "audio": True}),
                                           ("vfr", {"frames": True, "audio": False})])
def test_missing_modalities_are_flags(pipeline: Pipeline, clips: dict[str, Path], name: str, present: dict[str, bool]) -> None:
    r = pipeline.analyze(clips[name])
    for modality, flag in present.items():
        assert r.features[modality].present is flag
    assert r.features["text"].present is False
    row = r.to_row()
    assert row["frames_present"] is present["frames"] and row["audio_present"] is present["audio"]
    assert (row["frames_vector"] is None) is (not present["frames"])


@pytest.mark.parametrize("name, error", [("truncated", CorruptMedia), ("random", VideoOpenFailure), ("empty", VideoOpenFailure)])
def test_bad_files_raise_typed_errors(pipeline: Pipeline, clips: dict[str, Path], name: str, error: type) -> None:
    with pytest.raises(error) as info:
        pipeline.analyze(clips[name])
    assert str(clips[name]) in str(info.value)


def test_limits_and_ids(pipeline: Pipeline, clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MediaNotFound):
        pipeline.analyze(tmp_path / "nope.mp4")
    with pytest.raises(InvalidVideoId):
        pipeline.analyze(clips["good"], video_id="../../etc/passwd")
    strict = Pipeline()
    strict.config.limits = MediaLimits(max_duration_s=0.5)
    with pytest.raises(LimitExceeded):
        strict.analyze(clips["good"])


def test_default_ids_are_stable_and_valid(clips: dict[str, Path], tmp_path: Path) -> None:
    a = default_video_id(clips["good"])
    copy = tmp_path / "good.mp4"
    copy.write_bytes(clips["good"].read_bytes())
    assert a == default_video_id(copy) and a.startswith("good-")
    assert default_video_id(clips["good2"]) != a


def test_ingest_batch_with_bad_files(pipeline: Pipeline, clips: dict[str, Path], tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "db", dims=pipeline.dims())
    items = [clips["good"], clips["random"], {"path": clips["good2"], "video_id": "g2", "caption": "street dance"}, clips["empty"],
             {"path": clips["good"], "video_id": "bad id!"}]
    report = pipeline.ingest(items, cat)
    assert len(report.results) == 2 and len(report.failures) == 3
    assert {f.error_class for f in report.failures} == {"VideoOpenFailure", "InvalidVideoId"}
    assert cat.count() == 2
    row = cat.get("g2")
    assert row["caption"] == "street dance" and row["tags"] and len(row["fused_vector"]) == 1857
    assert json.loads(row["tags_json"])[0]["evidence"]
    # re-ingesting the same files updates in place
    version = cat.version
    pipeline.ingest([clips["good"], {"path": clips["good2"], "video_id": "g2"}], cat)
    assert cat.count() == 2 and cat.version > version
    # a batch where every file fails writes nothing
    version = cat.version
    report = pipeline.ingest([clips["random"], clips["truncated"]], cat)
    assert not report.results and cat.version == version
    # search by the fused vector finds the clip itself
    hit = cat.search(np.array(row["fused_vector"], np.float32), k=1)[0]
    assert hit["video_id"] == "g2"


def test_cli_ingest_json(clips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db"
    rc = main(["ingest", str(clips["good"]), str(clips["random"]), "--db", str(db), "--json", "--caption", "guitar song"])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 1  # one file failed
    ok = [o for o in out if "tags" in o]
    bad = [o for o in out if "error" in o]
    assert len(ok) == 1 and ok[0]["dims"] == {"frames": 1280, "audio": 193, "text": 384}
    assert ok[0]["tags"][0]["id"] == "music" and "decode" in ok[0]["timings_ms"]
    assert bad[0]["error"] == "VideoOpenFailure" and str(clips["random"]) in bad[0]["source"]
    assert main(["show", ok[0]["video_id"], "--db", str(db)]) == 0
    assert main(["show", "missing-id", "--db", str(db)]) == 2  # refused, as a cb2cf error


def test_caption_text() -> None:
    assert caption_text(None) == ""
    assert caption_text("  hi ") == "hi"
    assert caption_text({"title": "T", "hashtags": ["a", "#b"]}) == "T. #a #b"


def test_media_error_hierarchy() -> None:
    assert issubclass(CorruptMedia, MediaError) and issubclass(VideoOpenFailure, MediaError)


def test_awkward_file_names_get_valid_ids(clips: dict[str, Path], tmp_path: Path) -> None:
    from tagging.store.catalog import validate_video_id

    for name in ["_intro.mp4", "clip..final.mp4", "..x.mp4", "ünïcode name!.mp4", "-.mp4"]:
        f = tmp_path / name
        f.write_bytes(clips["good"].read_bytes())
        validate_video_id(default_video_id(f))


def test_bad_caption_is_a_typed_error_for_that_item(pipeline: Pipeline, clips: dict[str, Path], tmp_path: Path) -> None:
    report = pipeline.ingest([{"path": clips["good"], "caption": ["not", "a", "caption"]}, clips["good2"]], tmp_path / "db")
    assert len(report.results) == 1 and report.failures[0].error_class == "TaggingError"
    assert caption_text({"title": "T", "hashtags": "dance fun"}) == "T. #dance #fun"


def test_catalog_with_cf_vectors_accepts_a_pipeline_without_a_model(pipeline: Pipeline, clips: dict[str, Path], tmp_path: Path) -> None:
    from tagging.store.catalog import CatalogDims

    d = pipeline.dims()
    Catalog(tmp_path / "db", dims=CatalogDims(d.frames, d.audio, d.text, cf=32)).table  # noqa: B018 - made with a 32-d model
    cat = Catalog(tmp_path / "db", dims=pipeline.dims())  # no CB2CF model: CF size is the table's
    pipeline.ingest([clips["good"]], cat)
    assert cat.count() == 1 and cat.dims.cf == 32
