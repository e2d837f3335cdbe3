"""One contract for every backfill engine (the local decode pool, and Ray Data when installed).

On a folder with a known answer (two good clips, one audio-only clip, a random-bytes file
and an empty file) each engine stores exactly the decodable files, records the two bad ones
as typed failures and never stops for them, and a second run does nothing new.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import media_factory as mf
import pytest

from tagging.serving.backfill.run import BackfillConfig, run_backfill
from tagging.store.catalog import Catalog
from tagging.store.failures import FailureLog

# Ray is an optional extra and slow to start: its run is in the slow set (pytest -m slow)
ENGINES = ["local", pytest.param("ray", marks=[pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="pip install -e '.[ray]'")])]
GOOD = {"good0.mp4", "good1.mp4", "voice.m4a"}
BAD = {"random.mp4", "empty.mp4"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("engine-contract")
    mf.make_video(d / "good0.mp4", seconds=1.0, size=(160, 120), audio_kind="tone")
    mf.make_video(d / "good1.mp4", seconds=1.0, size=(160, 120), pattern="colors", audio_kind="noise")
    mf.make_audio_only(d / "voice.m4a", seconds=1.0)
    mf.random_bytes(d / "random.mp4")
    mf.empty(d / "empty.mp4")
    return d


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_stores_the_good_records_the_bad_and_resumes_idempotently(engine: str, folder: Path, tmp_path: Path,
                                                                         pipeline) -> None:
    db = tmp_path / "db"
    cfg = BackfillConfig(db=str(db), workers=1, engine=engine, show_progress=False)
    first = run_backfill(str(folder), cfg, pipeline)
    assert (first.total, first.processed, first.failed) == (5, 3, 2)

    rows = Catalog(str(db)).table.to_arrow().to_pylist()
    assert sorted(Path(r["source_uri"]).name for r in rows) == sorted(GOOD)
    assert len({r["video_id"] for r in rows}) == len(rows)
    failures = FailureLog(str(db)).known
    assert {Path(u).name for u in failures} == set(BAD)
    for f in failures.values():
        assert f["reason"] and f["error_class"].endswith(("MediaError", "CorruptMedia", "VideoOpenFailure",
                                                            "NoDecodableStream")), f

    again = run_backfill(str(folder), cfg, pipeline)
    assert (again.processed, again.failed, again.done, again.skipped_failed) == (0, 0, 3, 2)
    assert Catalog(str(db)).count() == 3
