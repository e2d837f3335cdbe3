"""What storing thumbnails costs at ingest: encode time against the decode it reuses, and bytes per row.

Run:
    python bench/thumbs.py ../shared/data/video          # any folder of clips (default: samples/)

For each file, from the same run: the probe + decode of the pipeline's sampled frames (the
baseline: the thumbnails reuse these frames), the JPEG encoding of the poster and frame thumbnails,
their ratio, and the bytes stored (poster + frames) next to the row's vectors (float32 sizes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tagging.inputs import expand_paths  # noqa: E402
from tagging.media import decode, probe  # noqa: E402
from tagging.media.thumbs import make_thumbnails  # noqa: E402
from tagging.pipeline import PipelineConfig  # noqa: E402
from tagging.store.catalog import CatalogDims  # noqa: E402


def main() -> None:
    """Print one line per file and the medians."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", default=[str(ROOT / "samples")])
    ap.add_argument("--repeat", type=int, default=3, help="encodes per file (the median is kept)")
    args = ap.parse_args()
    cfg = PipelineConfig()
    dims = CatalogDims()
    vector_bytes = 4 * (dims.frames + dims.audio + dims.text + dims.fused)
    print("| file | decode ms (baseline) | thumbnails ms | thumbs / decode | stored KB | vectors KB |")
    print("|---|---|---|---|---|---|")
    rows = []
    for path in expand_paths(args.paths):
        t = time.perf_counter()
        media = decode(path, cfg.limits, cfg.num_frames, cfg.max_side, cfg.sample_rate, info=probe(path, cfg.limits))
        dec = time.perf_counter() - t
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            th = make_thumbnails(media.frames, media.timestamps)
            times.append(time.perf_counter() - t)
        enc = statistics.median(times)
        kb = (len(th.poster or b"") + sum(map(len, th.frames))) / 1024
        rows.append((dec, enc, kb))
        print(f"| {Path(path).name[:40]} | {dec * 1e3:.1f} | {enc * 1e3:.2f} | {enc / dec:.3f} | {kb:.1f} | {vector_bytes / 1024:.1f} |")
    if rows:
        med = [statistics.median(c) for c in zip(*rows)]
        print(f"| **median of {len(rows)}** | {med[0] * 1e3:.1f} | {med[1] * 1e3:.2f} | {med[1] / med[0]:.3f} | {med[2]:.1f} | "
              f"{vector_bytes / 1024:.1f} |")


if __name__ == "__main__":
    main()
