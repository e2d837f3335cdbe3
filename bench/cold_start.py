"""Cold process to the first result: alternate new ``tagging ingest`` processes of two checkouts.

Run:
    python bench/cold_start.py --baseline /tmp/old-checkout       # this tree vs another, 2 rounds
    python bench/cold_start.py --runs 3 clip.mp4                  # this tree only, on a given file

Each run starts a new interpreter (``python -m tagging.cli ingest FILE --db NEW_DIR --json``) and
prints the seconds to its exit, its exit code and its peak RSS. Runs of the two checkouts
alternate, so a busy machine slows both alike; compare within one run of this script. Without a
file it generates the 10 s 1280x720 clip that ``bench/ingest.py`` uses. Model caches (ONNX
exports, the taxonomy embeddings) are whatever ``TAGGING_CACHE_DIR`` holds: run once to fill them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))


def cold_run(root: Path, clip: Path, db: Path) -> tuple[float, int, float]:
    """Seconds, exit code and peak MiB of one new ``tagging ingest`` process of the tree at ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tagging.cli", "ingest", str(clip), "--db", str(db), "--json"],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t0, os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", help="clip to ingest (default: a generated 10 s 720p clip)")
    parser.add_argument("--baseline", help="another checkout of the project to alternate with")
    parser.add_argument("--runs", type=int, default=2, help="rounds")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    try:
        if args.file:
            clip = Path(args.file).resolve()
        else:
            import media_factory as mf

            clip = mf.make_video(tmp / "synthetic_720p_10s.mp4", seconds=10.0, fps=30, size=(1280, 720),
                                 audio_kind="noise", pattern="colors", preset="veryfast")
        trees = {"this tree": ROOT, **({"baseline": Path(args.baseline).resolve()} if args.baseline else {})}
        print("| round | checkout | seconds to first result | exit | peak RSS MiB | load average |")
        print("|---:|---|---:|---:|---:|---:|")
        for r in range(args.runs):
            for i, (name, root) in enumerate(trees.items()):
                secs, code, mib = cold_run(root, clip, tmp / f"db-{r}-{i}")
                print(f"| {r + 1} | {name} | {secs:.2f} | {code} | {mib:.0f} | {os.getloadavg()[0]:.1f} |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
