"""Pipeline options shared by every command that builds a pipeline (ingest, serve, backfill, ...)."""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_pipeline_args(p: argparse.ArgumentParser) -> None:
    """Add the options that configure a :class:`~tagging.pipeline.Pipeline`."""
    p.add_argument("--num-frames", type=int, default=6, help="frames sampled per video")
    p.add_argument("--top-k", type=int, default=5, help="tags kept per video")
    p.add_argument("--taxonomy", help="taxonomy JSON file (default: the packaged one)")
    p.add_argument("--clip-model", help="use CLIP (hub id or local dir) instead of EfficientNet for frames")
    p.add_argument("--cb2cf-model", default=os.environ.get("TAGGING_CB2CF_MODEL"), help="CB2CF model dir: fill the CF vector")
    p.add_argument("--tag-head", default=os.environ.get("TAGGING_TAG_HEAD"), help="trained tag head dir (tagging train-tags)")
    p.add_argument("--no-speech", action="store_true", help="skip speech recognition")
    p.add_argument("--no-ocr", action="store_true", help="skip on-screen text recognition")
    p.add_argument("--policy-screen", choices=("off", "on", "auto"), default="off", help="NudeNet explicit-imagery screen")


def pipeline_config(args: argparse.Namespace) -> Any:
    """Build the ``PipelineConfig`` that :func:`add_pipeline_args` options describe."""
    from tagging.pipeline import PipelineConfig

    cfg = PipelineConfig(num_frames=args.num_frames, taxonomy=args.taxonomy, cb2cf_model=args.cb2cf_model, tag_head=args.tag_head)
    if args.clip_model:
        cfg.frames_extractor, cfg.frames_config = "clip", {"model": args.clip_model}
    cfg.tagger.top_k = args.top_k
    cfg.enrich.speech, cfg.enrich.ocr, cfg.enrich.policy_screen = not args.no_speech, not args.no_ocr, args.policy_screen
    return cfg
