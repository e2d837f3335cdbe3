"""The batched backfill (workers decode and describe audio, models batched across videos) stores the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import media_factory as mf
import numpy as np
import pytest

from tagging.pipeline import Pipeline
from tagging.serving.backfill.batch import PrepareSettings, decode_and_describe
from tagging.serving.backfill.run import BackfillConfig, run_backfill
from tagging.store.catalog import Catalog


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("batched")
    for i in range(5):
        mf.make_video(d / f"v{i}.mp4", seconds=1.0, size=(160, 120), pattern=["gradient", "colors"][i % 2],
                      audio_kind=["tone", "noise"][i % 2], fps=10 + i)
    mf.make_audio_only(d / "a.m4a", seconds=1.0)
    mf.random_bytes(d / "bad.mp4")
    return d


def _rows(db: Path) -> dict[str, dict]:
    rows = Catalog(str(db)).table.to_arrow().to_pylist()
    assert len(rows) == len({r["video_id"] for r in rows})
    return {r["video_id"]: r for r in rows}


def test_batched_equals_one_video_at_a_time(folder: Path, tmp_path: Path, pipeline: Pipeline) -> None:
    old = run_backfill(str(folder), BackfillConfig(db=str(tmp_path / "old"), workers=1, batch_videos=1), pipeline)
    new = run_backfill(str(folder), BackfillConfig(db=str(tmp_path / "new"), workers=2, batch_videos=4), pipeline)
    assert (old.processed, old.failed) == (new.processed, new.failed) == (6, 1)
    a, b = _rows(tmp_path / "old"), _rows(tmp_path / "new")
    assert sorted(a) == sorted(b)
    for vid in a:
        for key in ("tags", "extractors_json", "frames_present", "audio_present", "text_present", "caption"):
            assert a[vid][key] == b[vid][key], (vid, key)
        for key in ("frames_vector", "audio_vector", "fused_vector"):
            if a[vid][key] is not None:
                assert np.allclose(a[vid][key], b[vid][key], atol=1e-4), (vid, key)
        pa_, pb = (json.loads(r[vid]["tag_inputs_json"])["parts"] for r in (a, b))  # what a text refresh reuses
        assert [p["name"] for p in pa_] == [p["name"] for p in pb] and pa_
        assert all(np.allclose(p["scores"], q["scores"], atol=1e-3) for p, q in zip(pa_, pb)), vid
    again = run_backfill(str(folder), BackfillConfig(db=str(tmp_path / "new"), workers=2, batch_videos=4), pipeline)
    assert (again.processed, again.done, again.skipped_failed) == (0, 6, 1)  # resume: nothing twice


def test_worker_describes_audio_and_records_its_timings(folder: Path) -> None:
    prep = decode_and_describe(str(folder / "v0.mp4"), PrepareSettings())
    assert prep.audio is not None and prep.audio.present and len(prep.media.frames) > 0
    assert set(prep.timings) == {"decode", "audio", "ocr"} and prep.ocr is not None and not prep.errors
