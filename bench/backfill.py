"""Backfill benchmark: throughput of each path, peak memory at 1x and 10x files, optional HTTP latency.

Run:
    python bench/backfill.py                          # 16 generated 3 s clips (and 160 for the memory row)
    python bench/backfill.py --n 8 --dir ../shared/data/video
    python bench/backfill.py --device cuda            # the same on a GPU

Each configuration runs in its own process (so peak RSS is its own; model loading is
excluded from the rate), on the same files, in the same run. Two rates: wall clock over the
whole call (including the worker processes' start-up, which the batched path spends importing
and warming the audio stack), and steady state (rows between the first and the last row's
``ingested_at``), which is what a catalog-sized run sees:

* ``sequential``: a plain loop ``pipeline.analyze(path)`` + one upsert per file;
* ``one-at-a-time-2``: ``run_backfill`` with 2 decode processes and ``batch_videos=1``, the path
  before batching (decode in workers, every model in the parent, one video at a time);
* ``batched-1`` / ``batched-2``: ``run_backfill`` with 1 and 2 worker processes that decode and
  compute the audio features, running ahead, and the models batched across up to 8 ready videos;
* ``batched-2 x10``: the same on 10x as many files (hard links under new names): peak memory stays flat;
* ``hook http`` (with ``--http``): ``tagging serve`` in a subprocess, ``--clients`` concurrent clients
  POSTing ``/videos/by-path`` ``--requests`` times: p50/p95 latency.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def peak_mb() -> tuple[float, float]:
    """Peak RSS (MiB) of this process and of its largest waited-for child.

    The child figure counts the pages a ``spawn`` child shares with the parent between
    fork and exec, so it is not the decode process's own peak; the table shows the parent's.
    """
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


MODES = {"one-at-a-time-2": (2, 1), "batched-1": (1, 8), "batched-2": (2, 8)}  # workers, batch_videos


def one(mode: str, src: str, db: str) -> dict:
    """Run one configuration in this process and return its measurements."""
    from tagging.inputs import expand_paths
    from tagging.pipeline import Pipeline
    from tagging.serving.backfill.run import BackfillConfig, run_backfill
    from tagging.store.catalog import Catalog

    pipeline = Pipeline()
    pipeline.load_models()
    files = expand_paths([src])
    t0 = time.perf_counter()
    if mode == "sequential":
        catalog, ok = Catalog(db, dims=pipeline.dims()), 0
        for f in files:
            try:
                catalog.upsert([pipeline.analyze(f).to_row()])
                ok += 1
            except Exception:  # noqa: BLE001 - count good files only
                pass
    else:
        workers, batch = MODES[mode]
        report = run_backfill(src, BackfillConfig(db=db, workers=workers, batch_videos=batch), pipeline)
        ok = report.processed
    secs = time.perf_counter() - t0
    parent, child = peak_mb()
    stamps = sorted(r["ingested_at"] for r in Catalog(db).columns(["ingested_at"]))
    span = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0
    return {"mode": mode, "files": len(files), "ok": ok, "seconds": round(secs, 2),
            "videos_per_min": round(60 * ok / secs, 1), "peak_rss_mb": round(parent, 0), "peak_child_mb": round(child, 0),
            "steady_per_min": round(60 * (len(stamps) - 1) / span, 1) if span > 0 else None}


def _link(src: Path, dst: Path) -> None:
    """A hard link (a copy across file systems): a symlink would resolve to the same file, so the same id."""
    try:
        os.link(src.resolve(), dst)
    except OSError:
        shutil.copyfile(src, dst)


def make_clips(d: Path, n: int, src_dir: str | None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    if src_dir:
        from tagging.inputs import expand_paths

        for i, f in enumerate(expand_paths([src_dir])[:n]):
            _link(f, d / f"c{i:04d}{f.suffix}")
        return d
    import media_factory as mf

    for i in range(n):
        mf.make_video(d / f"c{i:04d}.mp4", seconds=3.0, size=(320, 240), fps=24,
                      pattern=["gradient", "colors"][i % 2], audio_kind=["tone", "noise"][i % 2])
    return d


def grow(src: Path, dst: Path, factor: int) -> Path:
    """``factor`` x the files of ``src`` under new names (new ids)."""
    dst.mkdir(parents=True, exist_ok=True)
    for k in range(factor):
        for f in sorted(src.iterdir()):
            _link(f, dst / f"r{k:02d}-{f.name}")
    return dst


def run_child(mode: str, src: Path, db: Path, device: str) -> dict:
    env = {**os.environ, "TAGGING_DEVICE": device} if device != "auto" else dict(os.environ)
    out = subprocess.run([sys.executable, __file__, "--one", mode, str(src), str(db)], capture_output=True, text=True,
                         cwd=ROOT, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def http_latency(src: Path, db: Path, clients: int, requests: int) -> dict:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "tagging.cli", "serve", "--db", str(db), "--port", str(port), "--root", str(src)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = sorted(p.name for p in src.iterdir())
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
        for _ in range(600):
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)

        def call(i: int) -> float:
            t = time.perf_counter()
            r = client.post("/videos/by-path", json={"path": files[i % len(files)], "video_id": f"h{i}"})
            r.raise_for_status()
            return time.perf_counter() - t

        call(0)  # warm
        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as ex:
            lat = sorted(ex.map(call, range(1, requests + 1)))
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(30)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    return {"mode": f"hook http ({clients} clients)", "requests": requests, "p50_ms": round(q(0.5)),
            "p95_ms": round(q(0.95)), "videos_per_min": round(60 * requests / wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16, help="files (generated unless --dir)")
    ap.add_argument("--dir", help="use the clips of this folder instead of generated ones")
    ap.add_argument("--factor", type=int, default=10, help="growth factor for the memory check")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the models run")
    ap.add_argument("--http", action="store_true", help="also measure the HTTP hook")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    print(f"cpu count: {os.cpu_count()}   load average: {os.getloadavg()[0]:.1f}   device: {args.device}", flush=True)
    try:
        src = make_clips(tmp / "src", args.n, args.dir)
        rows = [run_child(m, src, tmp / f"db-{m}", args.device) for m in ("sequential", *MODES)]
        big = run_child("batched-2", grow(src, tmp / "big", args.factor), tmp / "db-big", args.device)
        big["mode"] = f"batched-2 x{args.factor}"
        rows.append(big)
        if args.http:
            rows.append(http_latency(src, tmp / "db-http", args.clients, args.requests))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = rows[0]["videos_per_min"]
    steady0 = rows[0].get("steady_per_min") or base
    print("| mode | files | videos/min (wall, incl. worker start-up) | vs sequential | videos/min (steady: first to last row) "
          "| vs sequential | peak RSS MiB (main process) | largest child MiB | p50 / p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['videos_per_min'] / base:.2f}x" if "files" in r else ""
        steady = r.get("steady_per_min")
        sratio = f"{steady / steady0:.2f}x" if steady else ""
        mem = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else ""
        child = f"{r['peak_child_mb']:.0f}" if r.get("peak_child_mb") else ""
        lat = f"{r['p50_ms']} / {r['p95_ms']}" if "p50_ms" in r else ""
        print(f"| {r['mode']} | {r.get('files', r.get('requests'))} | {r['videos_per_min']} | {ratio} | {steady or ''} "
              f"| {sratio} | {mem} | {child} | {lat} |")

if __name__ == "__main__":
    main()
