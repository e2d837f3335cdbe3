"""Ingest benchmark: frame-model backends, per-stage latency, the floor, cold start, peak memory.

Run:
    python bench/ingest.py                              # samples/ plus a generated 10 s 720p clip
    python bench/ingest.py ../shared/data/video         # plus any folder of clips
    python bench/ingest.py --frames-backend torch       # the whole pipeline with the eager frame model

Printed, all from the same run:
* the frame model: eager PyTorch vs ONNX Runtime, images/s on 6-frame batches (the pipeline's shape)
  and on 48-frame batches (8 videos batched, as the backfill does), with the cosine between them;
* per stage (probe, decode, frames, audio, text, tagging, write, and any later stages) p50/p95 over the files,
  with models warm;
* the 10 s 720p clip: end-to-end p50 against the floor (probe + decode of the sampled frames only), a ratio.
  The floor is measured two ways: interleaved with the pipeline runs (each decode right after a
  pipeline run, as when a stream of uploads is served: the paired ratios' p50 and spread are printed)
  and back to back (the same file decoded repeatedly with nothing in between: the decoder's code and
  data stay in the CPU caches, so it is faster and the ratio against it higher);
* baselines on the same files: ``naive`` decodes every frame and runs the frame model on each,
  ``floor`` only decodes the sampled frames; the ratio column is naive / pipeline;
* a cold process (``python -m tagging.cli ingest``, a new interpreter, models from disk) to its first
  result, for one good file and for one bad file (random bytes), with the child's peak memory;
* peak resident memory of this process before the eager comparison (which loads a second model).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
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


def frame_rates(frames: list[np.ndarray], reps: int = 5) -> list[tuple[str, int, float]]:
    """Images/s of the eager and the ONNX frame model on batches of 6 and 48 real frames; also the cosine."""
    from tagging.extractors import ItemContent, get_extractor

    out = []
    exts = {b: get_extractor("effnet-lite0", backend=b) for b in ("torch", "onnx")}
    vecs = {}
    for n in (6, 48):
        batch = (frames * (n // len(frames) + 1))[:n]
        item = ItemContent(frames=batch, timestamps=[float(i) for i in range(n)])
        for name, ext in exts.items():
            for _ in range(2):  # warm (and, for ONNX, export once)
                vecs[name] = ext.extract(item).vector
            t = time.perf_counter()
            for _ in range(reps):
                ext.extract(item)
            out.append((name, n, n * reps / (time.perf_counter() - t)))
    out.append(("cosine", 0, float(vecs["torch"] @ vecs["onnx"])))
    return out


def cold_start(path: Path, db: Path) -> tuple[float, int, float]:
    """Seconds a new ``tagging ingest PATH`` process takes to its first result (its exit), its exit code, peak MiB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tagging.cli", "ingest", str(path), "--db", str(db), "--json"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return secs, proc.returncode, usage.ru_maxrss / 1024


def make_files(args: argparse.Namespace, tmp: Path) -> list[Path]:
    from tagging.pipeline import expand_paths

    files: list[Path] = []
    if not args.no_samples:
        import media_factory as mf

        files.append(mf.make_video(tmp / "synthetic_720p_10s.mp4", seconds=10.0, fps=30, size=(1280, 720),
                                   audio_kind="noise", pattern="colors", preset="veryfast"))
        files += expand_paths([ROOT / "samples"])
    return files + expand_paths(args.dirs)


def run_stages(pipeline: object, files: list[Path], captions: dict, catalog: object, repeat: int) -> tuple[dict, list, dict, list]:
    """Ingest every file ``repeat`` times; return per-stage timings, totals, per-file time and ASR rows."""
    stage: dict[str, list[float]] = {}
    asr: list[tuple[str, float, float]] = []  # (file, ASR seconds, speech seconds)
    totals: list[float] = []
    per_file: dict[str, float] = {}
    for _ in range(repeat):
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
    return stage, totals, per_file, asr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", help="extra folders (or files) of clips")
    parser.add_argument("--no-samples", action="store_true", help="leave out samples/ and the generated 720p clip")
    parser.add_argument("--naive-files", type=int, default=1, help="files to run the (slow) naive baseline on")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the files")
    parser.add_argument("--target-runs", type=int, default=15, help="warm runs of the generated 720p clip")
    parser.add_argument("--frames-backend", choices=("onnx", "torch"), default="onnx", help="frame model of the pipeline")
    args = parser.parse_args()

    from tagging.pipeline import Pipeline, PipelineConfig, load_captions
    from tagging.store.catalog import Catalog

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    files = make_files(args, tmp)
    captions = load_captions([ROOT / "samples", *args.dirs])
    print(f"files: {len(files)}   cpu count: {os.cpu_count()}   load average: {os.getloadavg()[0]:.1f}")

    bad = tmp / "random_bytes.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(100_000))
    cold = [("one good file", *cold_start(files[0], tmp / "cold-db")), ("one bad file", *cold_start(bad, tmp / "cold-db"))]

    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    pipeline = Pipeline(PipelineConfig(frames_config={"backend": args.frames_backend}))
    load_s = pipeline.load_models()
    init_s = time.perf_counter() - t0
    rss_models = peak_rss_mb()
    catalog = Catalog(tmp / "db", dims=pipeline.dims())
    stage, totals, per_file, asr = run_stages(pipeline, files, captions, catalog, args.repeat)

    if not args.no_samples:  # the target case, repeated so its p50 means something
        target = files[0]
        runs, floors = [], []
        for _ in range(args.target_runs):  # interleaved, so a burst of load hits both alike
            t0 = time.perf_counter()
            pipeline.analyze(target)
            runs.append(time.perf_counter() - t0)
            floors.append(floor(target, pipeline.config.num_frames))
        ratios = [r / f for r, f in zip(runs, floors)]
        warm_floors = [floor(target, pipeline.config.num_frames) for _ in range(args.target_runs)]
        print(f"\n10 s 720p clip, {args.target_runs} warm runs ({args.frames_backend} frame model): end to end "
              f"p50 {pct(runs, 50):.3f} s, p95 {pct(runs, 95):.3f} s; floor (probe + sampled decode) p50 "
              f"{pct(floors, 50):.3f} s; end to end / floor = {pct(runs, 50) / pct(floors, 50):.1f}x "
              f"(p50 of the paired ratios {pct(ratios, 50):.1f}x, p25-p75 {pct(ratios, 25):.1f}-{pct(ratios, 75):.1f}x); "
              f"floor decoded back to back (decoder warm, no model run between) p50 {pct(warm_floors, 50):.3f} s: "
              f"end to end / that = {pct(runs, 50) / pct(warm_floors, 50):.1f}x")
    print(f"\nmodel load (once per process): {load_s:.2f} s  (pipeline init incl. imports {init_s:.2f} s)")
    print("\n| stage | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    for k, v in stage.items():
        print(f"| {k} | {pct(v, 50) * 1000:.0f} | {pct(v, 95) * 1000:.0f} |")
    print(f"| **end to end** | **{pct(totals, 50) * 1000:.0f}** | **{pct(totals, 95) * 1000:.0f}** |")
    peak_pipeline = peak_rss_mb()

    print("\n| file | pipeline s | floor (sampled decode) s | naive (all frames + model) s | frames | naive / pipeline |")
    print("|---|---:|---:|---:|---:|---:|")
    for i, f in enumerate(files):
        fl = floor(f, pipeline.config.num_frames)
        if i < args.naive_files:
            nv, n = naive(f, pipeline.frames)
            ratio = f"{nv / per_file[f.name]:.1f}x" if f.name in per_file else "-"
            print(f"| {f.name} | {per_file.get(f.name, float('nan')):.3f} | {fl:.3f} | {nv:.2f} | {n} | {ratio} |")
        else:
            print(f"| {f.name} | {per_file.get(f.name, float('nan')):.3f} | {fl:.3f} | - | - | - |")
    if asr:
        print("\n| file with speech | ASR s | speech s | ASR / speech |")
        print("|---|---:|---:|---:|")
        for name, secs, speech in asr:
            print(f"| {name} | {secs:.2f} | {speech:.2f} | {secs / max(speech, 1e-6):.2f}x |")

    print("\n| cold process (new interpreter) | seconds to first result | exit code | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    for name, secs, code, mb in cold:
        print(f"| {name} | {secs:.2f} | {code} | {mb:.0f} |")

    media = pipeline.decode(files[0])
    rates = frame_rates(media.frames)
    print("\n| frame model | batch | images/s |")
    print("|---|---:|---:|")
    base = {n: r for name, n, r in rates if name == "torch"}
    for name, n, r in rates:
        if name != "cosine":
            print(f"| {'eager PyTorch' if name == 'torch' else 'ONNX Runtime'} | {n} | {r:.1f} ({r / base[n]:.2f}x eager) |")
    print(f"cosine(eager, ONNX) of the item vector: {rates[-1][2]:.6f}")
    print(f"\npeak RSS of the warm pipeline: {peak_pipeline:.0f} MiB (before models {rss0:.0f} MiB, after model load "
          f"{rss_models:.0f} MiB); with the eager comparison model too: {peak_rss_mb():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
