"""``tagging train-tags`` and ``tagging evaluate``: train a tag head and measure the tagger.

Wired into ``tagging/cli/main.py`` with ``add_commands(sub)``.

Examples:
    tagging evaluate ../shared/data/MANIFEST.tsv --label-map bench/labels/manifest_label_map.json
    tagging evaluate labels.tsv --captions captions.json --head models/tag-head --json report.json
    tagging train-tags labels.tsv --out models/tag-head --seed 0
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tagging.cli.options import HELP_FORMATTER, add_pipeline_args, pipeline_config

logger = logging.getLogger(__name__)


def make_pipeline(args: argparse.Namespace, tag_head: str | None = None) -> Any:
    """The pipeline the commands run (a seam tests replace with a fake)."""
    from tagging.pipeline import Pipeline

    cfg = pipeline_config(args)
    cfg.tag_head = tag_head
    cfg.tagger.top_k = max(cfg.tagger.top_k, 3)
    return Pipeline(cfg)


def _label_set(args: argparse.Namespace, ids: list[str]) -> Any:
    from tagging.tags.evaluate import load_label_map, read_labels

    label_map = load_label_map(args.label_map, ids) if args.label_map else None
    return read_labels(args.labels, ids, label_map, include_audio=args.include_audio)


def _captions(args: argparse.Namespace) -> dict[str, Any]:
    from tagging.inputs import load_captions

    return load_captions([], args.captions) if args.captions else {}


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run the tagger over a labels file and print accuracy, precision/recall and confusion."""
    from tagging.tags.evaluate import evaluate

    pipeline = make_pipeline(args, tag_head=args.head)
    labels = _label_set(args, pipeline.tagger.taxonomy.ids)
    if not labels.rows:
        print(f"error: {args.labels}: no evaluable rows ({len(labels.skipped)} skipped)", file=sys.stderr)
        return 1
    report = evaluate(pipeline, labels, _captions(args), threshold=args.threshold, worst=args.worst)
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
        print(f"report written to {args.json}")
    return 0


def cmd_train_tags(args: argparse.Namespace) -> int:
    """Extract fused features of the labelled videos, train a tag head, save it and print its metrics."""
    from tagging.errors import TaggingError
    from tagging.tags.heads import HeadConfig, train_head

    pipeline = make_pipeline(args)
    taxonomy = pipeline.tagger.taxonomy
    labels = _label_set(args, taxonomy.ids)
    captions = _captions(args)
    xs, ys, extractors = [], [], None
    for row in labels.rows:
        try:
            r = pipeline.analyze(row.file, caption=captions.get(row.file.name))
        except TaggingError as exc:
            print(f"skipped: {row.file}: {exc.error_class}: {exc.reason}", file=sys.stderr)
            continue
        extractors = extractors or dict(r.extractors)
        xs.append(np.asarray(r.fused, np.float32))
        ys.append([1 if cid in row.labels else 0 for cid in taxonomy.ids])
    if len(xs) < 2 or extractors is None:
        print(f"error: {args.labels}: need at least 2 usable labelled videos, got {len(xs)}", file=sys.stderr)
        return 1
    config = HeadConfig(holdout=args.holdout, seed=args.seed, c=args.c)
    try:
        head = train_head(np.stack(xs), np.array(ys), taxonomy.ids, taxonomy.taxonomy_id, extractors,
                          dict(pipeline.config.fused_weights), config)
    except ValueError as exc:
        print(f"error: {args.labels}: {exc}", file=sys.stderr)
        return 1
    out = head.save(args.out)
    m = head.metrics
    print(f"trained on {m['n_train']} videos, {m['n_holdout']} held out; {len(head.categories)} categories -> {out}")
    top1 = m.get("holdout_top1")
    print(f"held-out top-1: {'-' if top1 is None else f'{top1:.3f}'} over {m.get('holdout_items_scored', 0)} items")
    print("| category | train + | held-out + | threshold | calibrated | precision | recall |")
    print("|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    for cid, c in m["categories"].items():
        print(f"| {cid} | {c['train_positives']} | {c['holdout_positives']} | {c['threshold']:.3f} | "
              f"{'yes' if c['calibrated'] else 'no (default)'} | {fmt(c['precision'])} | {fmt(c['recall'])} |")
    if labels.skipped:
        print(f"{len(labels.skipped)} rows skipped (not evaluable videos)")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("labels", help="labels TSV with 'file' and 'label' columns")
    p.add_argument("--label-map", help="JSON mapping free-text labels to taxonomy ids")
    p.add_argument("--captions", help="JSON file mapping file name -> caption")
    p.add_argument("--include-audio", action="store_true", help="also use audio-only rows (skipped by default)")
    add_pipeline_args(p, tag_head=False)


def add_commands(subparsers: Any) -> None:
    """Add ``train-tags`` and ``evaluate`` to the ``tagging`` command's subparsers.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers()``.
    """
    p = subparsers.add_parser("train-tags", help="train a supervised tag head (linear probe) from a labels file",
                       formatter_class=HELP_FORMATTER)
    _common(p)
    p.add_argument("--out", default="models/tag-head", help="directory to save the head in")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    p.add_argument("--holdout", type=float, default=0.25, help="fraction held out to calibrate thresholds")
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 regularisation of the logistic regressions")
    p.set_defaults(func=cmd_train_tags)

    p = subparsers.add_parser("evaluate", help="measure the tagger on a labels file",
                       formatter_class=HELP_FORMATTER)
    _common(p)
    p.add_argument("--head", help="trained tag head directory (default: zero-shot only)")
    p.add_argument("--threshold", type=float, default=0.5, help="score at which a returned tag counts as predicted")
    p.add_argument("--worst", type=int, default=5, help="categories in the confusion table")
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.set_defaults(func=cmd_evaluate)
