"""Backfill: bad files among good ones, SIGKILL + resume, CF-only recompute, manifests, the Ray engine."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import media_factory as mf
import numpy as np
import pytest
from serving_helpers import make_cb2cf

from tagging.pipeline import Pipeline
from tagging.serving.backfill.run import BackfillConfig, run_backfill
from tagging.serving.backfill.sources import read_source
from tagging.store.catalog import Catalog
from tagging.store.failures import FailureLog

ROOT = Path(__file__).resolve().parents[2]
STABLE = ("video_id", "source_uri", "caption", "tags", "extractors_json", "cf_model_version", "frames_present",
          "audio_present", "text_present")


def _good_clips(d: Path, n: int) -> list[Path]:
    patterns, audio = ["gradient", "colors"], ["tone", "noise"]
    return [mf.make_video(d / f"good{i}.mp4", seconds=1.0, size=(160, 120), pattern=patterns[i % 2],
                          audio_kind=audio[i % 2], fps=10 + i) for i in range(n)]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good clips plus an audio-only, a corrupt (truncated), a random, an empty and an oversized file."""
    d = tmp_path_factory.mktemp("mixed")
    good = _good_clips(d, 2)
    mf.make_audio_only(d / "audio_only.m4a", seconds=1.0)
    mf.truncate(good[0], d / "truncated.mp4", 0.5)
    mf.random_bytes(d / "random.mp4")
    mf.empty(d / "empty.mp4")
    big = d / "oversized.mp4"
    big.write_bytes(good[1].read_bytes())
    with open(big, "r+b") as fh:  # sparse: over the 2 GiB default limit without using the disk
        fh.truncate(2 * 1024**3 + 1)
    (d / "captions.json").write_text(json.dumps({"good0.mp4": "Piano practice #music"}))
    return d


def _table(db: Path) -> dict[str, dict]:
    rows = Catalog(str(db)).table.to_arrow().to_pylist()
    assert len(rows) == len({r["video_id"] for r in rows}), "duplicate ids"
    return {r["video_id"]: r for r in rows}


def _same_tables(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert sorted(a) == sorted(b)
    for vid in a:
        for key in STABLE:
            assert a[vid][key] == b[vid][key], (vid, key)
        assert np.allclose(a[vid]["fused_vector"], b[vid]["fused_vector"], atol=1e-5), vid


def test_bad_files_go_to_the_failures_table(mixed: Path, tmp_path: Path, pipeline: Pipeline) -> None:
    db = tmp_path / "db"
    cfg = BackfillConfig(db=str(db), workers=2, decode_timeout_s=60)
    report = run_backfill(str(mixed), cfg, pipeline)
    assert (report.total, report.processed, report.failed) == (7, 3, 4)
    assert dict(report.failures) == {"CorruptMedia": 1, "VideoOpenFailure": 2, "LimitExceeded": 1}
    rows = _table(db)
    assert sorted(r["source_uri"].rsplit("/", 1)[1] for r in rows.values()) == ["audio_only.m4a", "good0.mp4", "good1.mp4"]
    assert [r["caption"] for r in rows.values() if r["source_uri"].endswith("good0.mp4")] == ["Piano practice #music"]
    assert not next(r for r in rows.values() if r["source_uri"].endswith(".m4a"))["frames_present"]
    failed = FailureLog(str(db)).known
    assert {Path(u).name: f["error_class"] for u, f in failed.items()} == {
        "truncated.mp4": "CorruptMedia", "random.mp4": "VideoOpenFailure", "empty.mp4": "VideoOpenFailure",
        "oversized.mp4": "LimitExceeded"}
    assert all(f["reason"] and f["attempts"] == 1 for f in failed.values())
    assert "4 failed" in report.summary()

    again = run_backfill(str(mixed), cfg, pipeline)  # idempotent: nothing to do, failures not retried
    assert (again.processed, again.done, again.skipped_failed, again.failed) == (0, 3, 4, 0)
    retry = run_backfill(str(mixed), BackfillConfig(db=str(db), workers=1, retry_failures=True), pipeline)
    assert (retry.processed, retry.failed) == (0, 4)
    assert all(f["attempts"] == 2 for f in FailureLog(str(db)).known.values())
    assert len(_table(db)) == 3


N_KILL_CLIPS = 8


def test_killed_backfill_resumes_to_the_same_table(tmp_path: Path, pipeline: Pipeline) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _good_clips(src, N_KILL_CLIPS)
    mf.random_bytes(src / "bad.mp4")
    reference = tmp_path / "reference"
    run_backfill(str(src), BackfillConfig(db=str(reference), workers=1), pipeline)

    db = tmp_path / "db"
    # one video per batch, one row per commit: 8 videos leave 6+ commits after a kill at 1-2 rows (with 5
    # videos in batches of 2 the torch-free pipeline committed every row before the kill landed)
    kill_after = random.Random(os.getpid() ^ int(time.time())).randint(1, 2)
    cmd = [sys.executable, "-m", "tagging.cli", "backfill", str(src), "--db", str(db), "--workers", "1",
           "--batch-rows", "1", "--batch-videos", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if (db / "videos.lance").exists() and Catalog(str(db)).count() >= kill_after:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "backfill finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    partial = Catalog(str(db)).count()
    assert 1 <= partial < N_KILL_CLIPS, (kill_after, partial)

    resumed = run_backfill(str(src), BackfillConfig(db=str(db), workers=1), pipeline)  # the same command again
    assert resumed.done == partial and resumed.processed == N_KILL_CLIPS - partial
    _same_tables(_table(db), _table(reference))


def test_new_cb2cf_version_recomputes_only_cf(tmp_path: Path, pipeline: Pipeline) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _good_clips(src, 2)
    dims = pipeline.dims(cf_dim=8)
    ext = {m: e.extractor_id for m, e in pipeline.extractors.items()}
    model_a, model_b = make_cb2cf(tmp_path / "a", dims, 1, extractors=ext), make_cb2cf(tmp_path / "b", dims, 2, extractors=ext)
    db = str(tmp_path / "db")
    saved = pipeline.config.cb2cf_model, pipeline._cb2cf
    try:
        pipeline.config.cb2cf_model, pipeline._cb2cf = str(model_a), None
        first = run_backfill(str(src), BackfillConfig(db=db), pipeline)
        assert first.processed == 2
        before = _table(Path(db))
        pipeline.config.cb2cf_model, pipeline._cb2cf = str(model_b), None
        second = run_backfill(str(src), BackfillConfig(db=db), pipeline)
        assert (second.processed, second.cf_updated) == (0, 2)
        after = _table(Path(db))
        for vid, row in after.items():
            assert row["cf_model_version"] == pipeline.cb2cf.version != before[vid]["cf_model_version"]
            assert row["frames_vector"] == before[vid]["frames_vector"]  # features reused, not re-decoded
            fresh = pipeline.analyze(row["source_uri"], vid)  # what a full run with model B gives
            assert np.allclose(row["cf_vector"], fresh.cf_vector, atol=1e-5)
        assert run_backfill(str(src), BackfillConfig(db=db), pipeline).done == 2
    finally:
        pipeline.config.cb2cf_model, pipeline._cb2cf = saved


def test_manifest_sources(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"x")
    csv = tmp_path / "m.csv"
    csv.write_text("video_id,uri,caption,creator\nvid-1,a.mp4,Hello #dance,alice\n,/abs/b.mp4,,\nvid-1,a.mp4,dup,\n")
    items = read_source(csv)
    assert [(i.video_id, Path(i.uri).name, i.caption) for i in items] == [("vid-1", "a.mp4", "Hello #dance"),
                                                                         (None, "b.mp4", "")]
    assert items[0].uri == str(tmp_path / "a.mp4") and items[0].metadata == {"creator": "alice"}
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(json.dumps({"path": "a.mp4", "caption": {"title": "T", "hashtags": ["x"]}}) + "\n\n")
    assert read_source(jsonl)[0].caption == {"title": "T", "hashtags": ["x"]}
    from tagging.serving.backfill.sources import SourceError

    for bad in ("video_id\nx\n", ):
        (tmp_path / "bad.csv").write_text(bad)
        with pytest.raises(SourceError, match="no 'uri'"):
            read_source(tmp_path / "bad.csv")
    with pytest.raises(SourceError):
        read_source(tmp_path / "nope.txt")


@pytest.mark.slow
def test_ray_engine_gives_the_same_rows(mixed: Path, tmp_path: Path, pipeline: Pipeline) -> None:
    pytest.importorskip("ray", reason="pip install -e '.[ray]'")
    local, ray_db = tmp_path / "local", tmp_path / "ray"
    a = run_backfill(str(mixed), BackfillConfig(db=str(local), workers=1), pipeline)
    b = run_backfill(str(mixed), BackfillConfig(db=str(ray_db), workers=1, engine="ray"), pipeline)
    assert (a.processed, a.failed, dict(a.failures)) == (b.processed, b.failed, dict(b.failures))
    _same_tables(_table(local), _table(ray_db))
    assert FailureLog(str(local)).known.keys() == FailureLog(str(ray_db)).known.keys()
    ids = set(_table(ray_db))  # the Ray source can also be the LanceDB catalog itself
    again = run_backfill(str(ray_db), BackfillConfig(db=str(ray_db), engine="ray"), pipeline)
    assert again.done == len(ids) and again.processed == 0


@pytest.mark.slow
def test_ray_workers_commit_their_own_batches(mixed: Path, tmp_path: Path, pipeline: Pipeline) -> None:
    """ray_write="workers": each actor upserts its batch; same rows, failures and resume as the driver writing."""
    pytest.importorskip("ray", reason="pip install -e '.[ray]'")
    local, ray_db = tmp_path / "local", tmp_path / "ray"
    a = run_backfill(str(mixed), BackfillConfig(db=str(local), workers=1), pipeline)
    cfg = BackfillConfig(db=str(ray_db), workers=2, engine="ray", ray_write="workers", ray_batch_size=2)
    b = run_backfill(str(mixed), cfg, pipeline)
    assert (a.processed, a.failed, dict(a.failures)) == (b.processed, b.failed, dict(b.failures))
    _same_tables(_table(local), _table(ray_db))
    assert FailureLog(str(local)).known.keys() == FailureLog(str(ray_db)).known.keys()
    again = run_backfill(str(mixed), cfg, pipeline)
    assert (again.processed, again.done, again.skipped_failed) == (0, a.processed, a.failed)
    assert len(_table(ray_db)) == a.processed  # no duplicates


def test_backfill_from_http_urls(mixed: Path, tmp_path: Path, pipeline: Pipeline) -> None:
    """A manifest of URLs: downloaded at decode time, rows keep the URL, ids come from the URL, reruns skip."""
    import functools
    import http.server
    import tempfile
    import threading

    from tagging.errors import LimitExceeded
    from tagging.serving.backfill.fetch import fetched, url_video_id

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mixed))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        urls = [f"{base}/good1.mp4", f"{base}/missing.mp4", f"{base}/random.mp4"]
        manifest = tmp_path / "m.jsonl"
        manifest.write_text("".join(json.dumps({"uri": u, "caption": "Drums #music"}) + "\n" for u in urls))
        before = set(Path(tempfile.gettempdir()).glob("tagging-fetch-*"))
        db = tmp_path / "db"
        report = run_backfill(str(manifest), BackfillConfig(db=str(db), workers=1), pipeline)
        assert (report.processed, report.failed) == (1, 2)
        assert dict(report.failures) == {"MediaNotFound": 1, "VideoOpenFailure": 1}
        rows = _table(db)
        assert list(rows) == [url_video_id(urls[0])] and rows[url_video_id(urls[0])]["source_uri"] == urls[0]
        assert json.loads(rows[url_video_id(urls[0])]["probe_json"])["path"] == urls[0]  # not the deleted download
        assert set(Path(tempfile.gettempdir()).glob("tagging-fetch-*")) == before  # downloads deleted
        again = run_backfill(str(manifest), BackfillConfig(db=str(db), workers=1), pipeline)
        assert (again.done, again.skipped_failed, again.processed) == (1, 2, 0)
        with pytest.raises(LimitExceeded, match="limit"), fetched(urls[0], max_bytes=1000):
            pass
    finally:
        srv.shutdown()
