"""A backfill into a catalog on an object store (``s3://``), over the S3 protocol: rows, failures, resume.

The ``s3`` fixture (``tests/conftest.py``) starts a local S3-compatible server; see ``tests/fixtures/s3_server.py``.
"""

from __future__ import annotations

from pathlib import Path

import media_factory as mf
import pytest
from s3_server import S3_BUCKET, s3_keys

from tagging.pipeline import Pipeline
from tagging.serving.backfill.run import BackfillConfig, run_backfill
from tagging.store.catalog import Catalog
from tagging.store.failures import FailureLog


def test_backfill_into_an_s3_catalog_resumes_without_duplicates(
    s3: dict[str, str], tmp_path: Path, pipeline: Pipeline
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i, (pattern, audio) in enumerate((("gradient", "tone"), ("colors", "noise"))):
        mf.make_video(src / f"good{i}.mp4", seconds=1.0, size=(160, 120), pattern=pattern, audio_kind=audio)
    mf.random_bytes(src / "random.mp4")
    uri = f"s3://{S3_BUCKET}/backfill"

    report = run_backfill(str(src), BackfillConfig(db=uri, storage_options=s3, workers=1), pipeline)
    assert (report.total, report.processed, report.failed) == (3, 2, 1)
    assert any(k.startswith("backfill/videos.lance/") for k in s3_keys(s3, "backfill/")), "nothing reached the bucket"
    assert not (Path.cwd() / "s3:").exists() and not (tmp_path / "s3:").exists(), "wrote a local directory"

    again = run_backfill(str(src), BackfillConfig(db=uri, storage_options=s3, workers=1), pipeline)
    assert (again.processed, again.done, again.skipped_failed) == (0, 2, 1)

    rows = Catalog(uri, storage_options=s3).table.to_arrow().to_pylist()
    assert sorted(Path(r["source_uri"]).name for r in rows) == ["good0.mp4", "good1.mp4"]
    assert len({r["video_id"] for r in rows}) == len(rows)
    failed = FailureLog(uri, storage_options=s3).known
    assert {Path(u).name: f["error_class"] for u, f in failed.items()} == {"random.mp4": "VideoOpenFailure"}


@pytest.mark.slow
def test_ray_workers_commit_into_one_s3_catalog(s3: dict[str, str], tmp_path: Path, pipeline: Pipeline) -> None:
    """The scale-out layout: Ray actors write their own batches into the shared bucket; a rerun adds nothing."""
    pytest.importorskip("ray", reason="pip install -e '.[ray]'")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        mf.make_video(src / f"clip{i}.mp4", seconds=1.0, size=(160, 120), pattern=("gradient", "colors")[i % 2],
                      audio_kind=("tone", "noise")[i % 2], fps=10 + i)
    mf.empty(src / "empty.mp4")
    uri = f"s3://{S3_BUCKET}/ray"
    cfg = BackfillConfig(db=uri, storage_options=s3, workers=2, engine="ray", ray_write="workers", ray_batch_size=2)
    first = run_backfill(str(src), cfg, pipeline)
    assert (first.processed, first.failed) == (4, 1)
    again = run_backfill(str(src), cfg, pipeline)
    assert (again.processed, again.done, again.skipped_failed) == (0, 4, 1)
    rows = Catalog(uri, storage_options=s3).table.to_arrow().to_pylist()
    assert sorted(Path(r["source_uri"]).name for r in rows) == [f"clip{i}.mp4" for i in range(4)]
    assert list(map(lambda u: Path(u).name, FailureLog(uri, storage_options=s3).known)) == ["empty.mp4"]
