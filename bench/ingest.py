"""Ingest benchmark: per-stage latency, model-load time, peak memory, and two baselines.

Run:
    python bench/ingest.py                              # samples/ plus a generated 10 s 720p clip
    python bench/ingest.py ../shared/data/video         # plus any folder of clips

Printed, all from the same run:
* per stage (probe, decode, frames, audio, text, tagging, write, and any later stages) p50/p95 over the files,
  with models warm; model loading is timed separately;
* the end-to-end p50 and p95;
* baselines on the same files: ``naive`` decodes every frame and runs the frame model on each,
  ``floor`` only decodes the sampled frames (the least any frame-based pipeline must do); the ratio
  column is naive / pipeline;
* peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def naive(path: Path, frames_ext: object, batch: int = 32) -> tuple[float, int]:
    """Decode every frame and run the frame model on each; return (seconds, frames)."""
    import av

    from tagging.extractors import ItemContent

    t0 = time.perf_counter()
    n = 0
    buf: list[np.ndarray] = []
    with av.open(str(path)) as container:
        if not container.streams.video:
            return 0.0, 0
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            img = frame.to_ndarray(format="rgb24")
            buf.append(img)
            n += 1
            if len(buf) == batch:
                frames_ext.extract(ItemContent(frames=buf, timestamps=[0.0] * len(buf)))
                buf = []
    if buf:
        frames_ext.extract(ItemContent(frames=buf, timestamps=[0.0] * len(buf)))
    return time.perf_counter() - t0, n


def floor(path: Path, num_frames: int) -> float:
    """Probe and decode only the sampled frames; return seconds."""
    from tagging.media import probe, sample_frames

    t0 = time.perf_counter()
    info = probe(path)
    if info.has_video:
        sample_frames(path, info, num_frames)
    return time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", help="extra folders (or files) of clips")
    parser.add_argument("--no-samples", action="store_true", help="leave out samples/ and the generated 720p clip")
    parser.add_argument("--naive-files", type=int, default=3, help="files to run the (slow) naive baseline on")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the files")
    parser.add_argument("--target-runs", type=int, default=7, help="warm runs of the generated 720p clip")
    args = parser.parse_args()

    import torch

    from tagging.pipeline import Pipeline, expand_paths, load_captions
    from tagging.store.catalog import Catalog

    files: list[Path] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    if not args.no_samples:
        import media_factory as mf

        files.append(mf.make_video(tmp / "synthetic_720p_10s.mp4", seconds=10.0, fps=30, size=(1280, 720), audio_kind="noise",
                                   pattern="colors", preset="veryfast"))
        files += expand_paths([ROOT / "samples"])
    files += expand_paths(args.dirs)
    captions = load_captions([ROOT / "samples", *args.dirs])
    print(f"files: {len(files)}   torch threads: {torch.get_num_threads()}   cpu count: {os.cpu_count()}")

    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    pipeline = Pipeline()
    load_s = pipeline.load_models()
    init_s = time.perf_counter() - t0
    rss_models = peak_rss_mb()
    catalog = Catalog(tmp / "db", dims=pipeline.dims())

    stage: dict[str, list[float]] = {}
    asr: list[tuple[str, float, float]] = []  # (file, ASR seconds, speech seconds)
    totals: list[float] = []
    per_file: dict[str, float] = {}
    for _ in range(args.repeat):
        for f in files:
            report = pipeline.ingest([{"path": f, "caption": captions.get(f.name)}], catalog)
            for r in report.results:
                for k, v in r.timings.items():
                    stage.setdefault(k, []).append(v)
                totals.append(sum(r.timings.values()))
                tr = r.enrichment.transcript if r.enrichment else None
                if tr is not None and tr.text:
                    asr.append((f.name, r.timings.get("speech", 0.0), tr.speech_s))
                per_file[f.name] = sum(r.timings.values())
            for fail in report.failures:
                print(f"failed: {fail.source}: {fail.error_class}: {fail.reason}")

    if not args.no_samples:  # the target case, repeated so its p50 means something
        target = files[0]
        runs = [sum(pipeline.analyze(target).timings.values()) for _ in range(args.target_runs)]
        print(f"\n10 s 720p clip, {args.target_runs} warm runs: p50 {pct(runs, 50):.3f} s, p95 {pct(runs, 95):.3f} s "
              f"(naive baseline below: decode every frame + frame model on each)")
    print(f"\nmodel load (once per process): {load_s:.2f} s  (pipeline init incl. imports {init_s:.2f} s)")
    print("\n| stage | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    for k, v in stage.items():
        print(f"| {k} | {pct(v, 50) * 1000:.0f} | {pct(v, 95) * 1000:.0f} |")
    print(f"| **end to end** | **{pct(totals, 50) * 1000:.0f}** | **{pct(totals, 95) * 1000:.0f}** |")

    print("\n| file | pipeline s | floor (sampled decode) s | naive (all frames + model) s | frames | naive / pipeline |")
    print("|---|---:|---:|---:|---:|---:|")
    frames_ext = pipeline.frames
    for i, f in enumerate(files):
        fl = floor(f, pipeline.config.num_frames)
        if i < args.naive_files:
            nv, n = naive(f, frames_ext)
            ratio = f"{nv / per_file[f.name]:.1f}x" if f.name in per_file else "-"
            print(f"| {f.name} | {per_file.get(f.name, float('nan')):.3f} | {fl:.3f} | {nv:.2f} | {n} | {ratio} |")
        else:
            print(f"| {f.name} | {per_file.get(f.name, float('nan')):.3f} | {fl:.3f} | - | - | - |")
    if asr:
        print("\n| file with speech | ASR s | speech s | ASR / speech |")
        print("|---|---:|---:|---:|")
        for name, secs, speech in asr:
            print(f"| {name} | {secs:.2f} | {speech:.2f} | {secs / max(speech, 1e-6):.2f}x |")
    print(f"\npeak RSS: {peak_rss_mb():.0f} MiB (before models {rss0:.0f} MiB, after model load {rss_models:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
