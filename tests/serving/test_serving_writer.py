"""Write path: 16 processes through the hook at once, micro-batching, maintenance beside writers."""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

import pytest
from serving_helpers import FAKE_DIMS, FakePipeline, fake_decode, hook_worker

from tagging.serving.hook import HookConfig, UploadHook
from tagging.store.catalog import Catalog
from tagging.store.writer import BatchWriter, WriterConfig, maintain


def _ids(catalog: Catalog) -> list[str]:
    catalog.table.checkout_latest()
    return catalog.table.to_arrow().column("video_id").to_pylist()


def test_sixteen_processes_overlapping_ids(tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    src = tmp_path / "x.mp4"
    src.write_bytes(b"\0" * 100)
    Catalog(db, dims=FAKE_DIMS).table  # noqa: B018
    # process p uploads ids p..p+9: every id but the ends is uploaded by several processes at once
    jobs = [[(str(src), f"vid-{(p + j) % 40:03d}") for j in range(10)] for p in range(16)]
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["serving_helpers", "tagging.serving.hook", "lancedb", "pyarrow"])
    barrier, out = ctx.Barrier(16), ctx.Queue()
    procs = [ctx.Process(target=hook_worker, args=(db, j, barrier, out)) for j in jobs]
    for p in procs:
        p.start()
    results = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * 16
    ids = _ids(Catalog(db))
    expected = {vid for j in jobs for _, vid in j}
    assert sorted(sum(results, [])) == sorted(vid for j in jobs for _, vid in j)  # every call returned its row
    assert len(ids) == len(set(ids)), "duplicate rows"
    assert set(ids) == expected, "lost rows"


def test_micro_batching_makes_few_versions(tmp_path: Path) -> None:
    src = tmp_path / "x.mp4"
    src.write_bytes(b"\0" * 100)
    cfg = HookConfig(db=str(tmp_path / "db"), maintenance_interval_s=None, writer=WriterConfig(max_rows=16, max_delay_ms=300))
    with UploadHook(cfg, pipeline=FakePipeline(), decode_fn=fake_decode) as hook:
        v0 = hook.catalog.version
        threads = [threading.Thread(target=hook, args=(src, f"b{i}")) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert hook.writer.rows_written == 32
        assert hook.writer.commits <= 8, hook.writer.commits  # one commit per upload would be 32
        assert hook.catalog.version - v0 == hook.writer.commits
        row = hook.get("b7")
        assert row is not None and row["tags"] == ["music"]


def test_maintenance_alongside_writers(tmp_path: Path) -> None:
    catalog = Catalog(str(tmp_path / "db"), dims=FAKE_DIMS)
    src = tmp_path / "x.mp4"
    src.write_bytes(b"\0")
    rows = [FakePipeline().analyze_media(fake_decode(str(src), _settings()), f"m{i}").to_row() for i in range(60)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def maintenance() -> None:
        while not stop.is_set():
            try:
                maintain(Catalog(catalog.uri))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    with BatchWriter(catalog, WriterConfig(max_rows=5, max_delay_ms=10)) as writer:
        writer.write(rows[0])
        t = threading.Thread(target=maintenance)
        t.start()
        futs = [writer.submit(r) for r in rows[1:]]
        assert all(f.result(60) for f in futs)
        stop.set()
        t.join()
    assert not errors
    report = maintain(catalog)
    ids = _ids(catalog)
    assert sorted(ids) == sorted(f"m{i}" for i in range(60))
    assert report["after"]["fragments"] in (-1, 1) and report["after"]["versions_kept"] >= 1


def _settings():
    from tagging.serving.isolation import DecodeSettings

    return DecodeSettings()


def test_failed_batch_fails_its_rows_only(tmp_path: Path) -> None:
    from tagging.errors import CatalogError

    catalog = Catalog(str(tmp_path / "db"), dims=FAKE_DIMS)
    src = tmp_path / "x.mp4"
    src.write_bytes(b"\0")
    good = FakePipeline().analyze_media(fake_decode(str(src), _settings()), "ok1").to_row()
    with BatchWriter(catalog, WriterConfig(max_rows=1)) as writer:
        with pytest.raises(CatalogError, match="video ids must match"):
            writer.write({**good, "video_id": "../etc"}, timeout=30)
        assert writer.write(good, timeout=30) == "ok1"
    assert _ids(catalog) == ["ok1"]


def test_one_bad_row_does_not_fail_its_batch(tmp_path: Path) -> None:
    from tagging.errors import CatalogError

    catalog = Catalog(str(tmp_path / "db"), dims=FAKE_DIMS)
    src = tmp_path / "x.mp4"
    src.write_bytes(b"\0")
    good = FakePipeline().analyze_media(fake_decode(str(src), _settings()), "ok1").to_row()
    bad = {**good, "video_id": "bad1", "text_vector": [0.0]}  # wrong size: refused by the catalog
    with BatchWriter(catalog, WriterConfig(max_rows=8, max_delay_ms=60_000)) as writer:
        futures = [writer.submit(good), writer.submit(bad), writer.submit({**good, "video_id": "ok2"})]
        writer.flush()
    assert futures[0].result() == "ok1" and futures[2].result() == "ok2"
    assert isinstance(futures[1].exception(), CatalogError)
    assert _ids(catalog) == ["ok1", "ok2"]
