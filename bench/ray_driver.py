"""Where does the Ray driver saturate? Driver write rows/s against worker rows/s, from measured per-row costs.

Run:
    python bench/ray_driver.py                       # catalog sizes 0, 2000, 10000 rows
    python bench/ray_driver.py --sizes 0 20000 --ray 2   # plus a real Ray run with 1..2 actors, both write modes

With ``ray_write="driver"`` every row an actor produces is pickled back to the driver, which
unpickles it and upserts it (``merge_insert`` on ``video_id``) in batches of ``--batch-rows``. This
script measures, in one run:

* the **driver's** cost per row: unpickle + one ``locked_upsert`` per batch, at several catalog sizes
  (``merge_insert`` joins on ``video_id``, so it grows with the table);
* a **worker's** cost per row: the real pipeline on generated clips in one process (CPU here);
* their ratio: the number of workers at which the driver is the ceiling.

With ``--ray N`` it also runs ``run_backfill(engine="ray")`` with 1..N actors on a local Ray instance,
writing from the driver and from the workers (wall-clock rows/s; on a 2-core machine the actors
share the cores, so this shows the mechanics, not cluster scaling).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def real_rows(pipeline: object, clips: list[Path]) -> tuple[list[dict], float]:
    """Rows of the clips and the worker's seconds per row (warm models, one process)."""
    pipeline.analyze(clips[0])  # warm
    t0 = time.perf_counter()
    rows = [pipeline.analyze(c).to_row() for c in clips]
    return rows, (time.perf_counter() - t0) / len(clips)


def fill(catalog: object, template: dict, n: int, start: int) -> None:
    """Add ``n`` copies of ``template`` under new ids (plain appends, in chunks)."""
    from tagging.store.catalog import row_model

    model = row_model(catalog.dims)
    for lo in range(0, n, 2000):
        chunk = [model(**{**template, "video_id": f"fill-{start + i}"}).model_dump() for i in range(lo, min(n, lo + 2000))]
        catalog.table.add(chunk)


def driver_rate(catalog: object, template: dict, batch_rows: int, batches: int, tag: str) -> float:
    """Rows/s of the driver: unpickle each row's payload, then one locked upsert per batch."""
    from tagging.store.writer import locked_upsert

    payloads = [pickle.dumps(("ok", f"{tag}-{i}", {**template, "video_id": f"{tag}-{i}"}))
                for i in range(batch_rows * batches)]
    t0 = time.perf_counter()
    for b in range(batches):
        rows = [pickle.loads(p)[2] for p in payloads[b * batch_rows:(b + 1) * batch_rows]]
        locked_upsert(catalog, rows)
    return batch_rows * batches / (time.perf_counter() - t0)


def ray_runs(src: Path, tmp: Path, pipeline: object, actors: int) -> list[tuple[str, int, float]]:
    from tagging.serving.backfill.run import BackfillConfig, run_backfill

    out = []
    for n in range(1, actors + 1):
        for mode in ("driver", "workers"):
            cfg = BackfillConfig(db=str(tmp / f"ray-{mode}-{n}"), engine="ray", workers=n, ray_write=mode)
            t0 = time.perf_counter()
            report = run_backfill(str(src), cfg, pipeline)
            out.append((mode, n, report.processed / (time.perf_counter() - t0)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 2000, 10000], help="catalog sizes (rows) to write into")
    ap.add_argument("--batch-rows", type=int, default=32, help="rows per commit (the backfill's default)")
    ap.add_argument("--batches", type=int, default=5, help="commits timed per size")
    ap.add_argument("--clips", type=int, default=4, help="generated 3 s clips for the worker's cost")
    ap.add_argument("--ray", type=int, default=0, help="also run Ray with 1..N actors")
    args = ap.parse_args()

    import media_factory as mf

    from tagging.pipeline import Pipeline
    from tagging.store.catalog import Catalog

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-driver-"))
    (tmp / "src").mkdir()
    clips = [mf.make_video(tmp / "src" / f"c{i}.mp4", seconds=3.0, size=(320, 240), fps=24,
                           pattern=["gradient", "colors"][i % 2], audio_kind=["tone", "noise"][i % 2])
             for i in range(args.clips)]
    pipeline = Pipeline()
    pipeline.load_models()
    rows, worker_s = real_rows(pipeline, clips)
    worker_rps = 1.0 / worker_s
    print(f"cpu count: {os.cpu_count()}   load average: {os.getloadavg()[0]:.1f}   "
          f"row size: {len(pickle.dumps(rows[0])) / 1024:.1f} KiB pickled")
    print(f"worker: {worker_s * 1000:.0f} ms per row = {worker_rps:.2f} rows/s per worker process (CPU, warm)\n")
    print("| catalog rows | driver rows/s (unpickle + upsert, batches of %d) | ms per commit | workers to saturate the driver |"
          % args.batch_rows)
    print("|---:|---:|---:|---:|")
    catalog = Catalog(tmp / "db", dims=pipeline.dims())
    have = 0
    for size in sorted(args.sizes):
        fill(catalog, rows[0], size - have, have)
        have = max(have, size)
        rps = driver_rate(catalog, rows[0], args.batch_rows, args.batches, f"s{size}")
        have += args.batch_rows * args.batches
        print(f"| {size} | {rps:.0f} | {1000 * args.batch_rows / rps:.0f} | {rps / worker_rps:.0f} |")
    if args.ray:
        print("\n| Ray write mode | actors | rows/s (wall, local instance) |")
        print("|---|---:|---:|")
        for mode, n, rps in ray_runs(tmp / "src", tmp, pipeline, args.ray):
            print(f"| {mode} | {n} | {rps:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
