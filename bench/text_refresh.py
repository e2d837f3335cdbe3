"""Backfill after a text-extractor change: text-only refresh against the full re-analysis.

A catalog of ``--n`` generated clips (3 s, 320x240, tone or noise audio, a caption each) is
ingested with ``text-minilm`` as the text extractor and copied twice. Both copies are then
backfilled with the default pipeline (``text-e5``): in one the rows keep their
``tag_inputs_json`` (text-only refresh: no decode, Whisper or OCR), in the other it is cleared
first, as in rows made before the column existed (full re-analysis, one video at a time and
batched). The same loaded pipeline runs every mode; its load time is not counted. Prints one
row per mode with the wall time, rows per minute and the ratio to the full one-at-a-time path.

    python bench/text_refresh.py --n 8
    python bench/text_refresh.py --src /work/shared/data/video     # real clips (speech, on-screen text)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

CAPTIONS = ["my dog chasing a ball in the park", "我的狗狗在公园里追球", "recette facile de crêpes",
            "tocando batería en casa #drumcover", "easy pasta recipe for dinner", "street dance battle tonight"]


def build(n: int, work: Path, src: str | None) -> Path:
    """Generate (or take the first ``n`` files of ``src``) clips and ingest them with MiniLM text; return the catalog."""
    import media_factory as mf

    from tagging.inputs import expand_paths
    from tagging.pipeline import Pipeline, PipelineConfig

    clips = work / "clips"
    clips.mkdir()
    paths = expand_paths([Path(src)])[:n] if src else [
        mf.make_video(clips / f"c{i:03d}.mp4", seconds=3.0, size=(320, 240), pattern="colors" if i % 2 else "gradient",
                      audio_kind="noise" if i % 2 else "tone") for i in range(n)]
    items = [{"path": p, "video_id": f"c{i:03d}", "caption": CAPTIONS[i % len(CAPTIONS)]} for i, p in enumerate(paths)]
    db = work / "minilm.lancedb"
    report = Pipeline(PipelineConfig(text_extractor="text-minilm")).ingest(items, db)
    assert not report.failures, report.failures
    return db


def strip_inputs(db: Path) -> None:
    """Clear every row's ``tag_inputs_json`` (rows as made before the column existed)."""
    from tagging.store.catalog import Catalog

    cat = Catalog(db)
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in cat.get_many(sorted(cat.ids()))]
    cat.upsert([{**r, "tag_inputs_json": None} for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="clips")
    ap.add_argument("--src", default=None, help="a folder of real clips (default: generated ones)")
    args = ap.parse_args()
    from tagging.pipeline import Pipeline
    from tagging.serving.backfill.run import BackfillConfig, run_backfill
    from tagging.store.catalog import Catalog

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = build(args.n, work, args.src)
        n = Catalog(base).count()
        pipeline = Pipeline()
        pipeline.load_models()
        modes = [("full, one at a time", True, 1), ("full, batched (8)", True, 8), ("text-only refresh", False, 1)]
        rows = []
        for name, strip, batch in modes:
            db = work / f"db{len(rows)}"
            shutil.copytree(base, db)
            if strip:
                strip_inputs(db)
            t = time.perf_counter()
            rep = run_backfill(str(db), BackfillConfig(db=str(db), batch_videos=batch), pipeline=pipeline)
            rows.append((name, time.perf_counter() - t, rep.processed, rep.text_refreshed))
        base_s = rows[0][1]
        print(f"{'mode':<22} {'rows':>5} {'full':>5} {'text':>5} {'wall s':>8} {'rows/min':>9} {'x full':>7}")
        for name, s, full, text in rows:
            print(f"{name:<22} {n:>5} {full:>5} {text:>5} {s:>8.2f} {60 * n / s:>9.1f} {base_s / s:>7.1f}")


if __name__ == "__main__":
    main()
