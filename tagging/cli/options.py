"""Options shared by the commands, each defined once: the catalog, the pipeline, the decode limits.

Defaults come from the config dataclasses and environment variables (``TAGGING_DB``,
``TAGGING_CB2CF_MODEL``, ``TAGGING_TAG_HEAD``); ``--help`` shows them.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

HELP_FORMATTER = argparse.ArgumentDefaultsHelpFormatter


class _StorageOption(argparse.Action):
    """``KEY=VALUE``, repeatable: merged into ``$TAGGING_STORAGE_OPTIONS`` (read by every catalog this process opens)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any,
                 option_string: str | None = None) -> None:
        import json

        from tagging.store.catalog import STORAGE_OPTIONS_ENV

        key, sep, val = str(value).partition("=")
        if not sep or not key:
            parser.error(f"{option_string} wants KEY=VALUE, not {value!r}")
        opts = json.loads(os.environ.get(STORAGE_OPTIONS_ENV) or "{}")
        opts[key] = val
        os.environ[STORAGE_OPTIONS_ENV] = json.dumps(opts)
        setattr(namespace, self.dest, opts)


def add_db_arg(p: argparse.ArgumentParser) -> None:
    """``--db`` (the catalog: a LanceDB directory or URI) and ``--storage-option KEY=VALUE`` for object stores."""
    from tagging.store.catalog import default_db

    p.add_argument("--db", default=default_db(),
                   help="the catalog: a LanceDB directory or URI such as s3://bucket/catalog ($TAGGING_DB)")
    p.add_argument("--storage-option", action=_StorageOption, metavar="KEY=VALUE",
                   help="object-store option for --db, repeatable (e.g. region=eu-west-1; $TAGGING_STORAGE_OPTIONS as JSON)")


def add_decode_args(p: argparse.ArgumentParser) -> None:
    """``--decode-timeout`` and ``--decode-memory-mb``: limits of one isolated decode."""
    from tagging.serving.isolation import DEFAULT_DECODE_MEMORY_MB, DEFAULT_DECODE_TIMEOUT_S

    p.add_argument("--decode-timeout", type=float, default=DEFAULT_DECODE_TIMEOUT_S, help="seconds one decode may take")
    p.add_argument("--decode-memory-mb", type=int, default=DEFAULT_DECODE_MEMORY_MB,
                   help="address-space limit of a decode process")


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda``: where the models run (``auto``: CUDA when the model's runtime sees a GPU)."""
    from tagging.runtime import DEVICE_ENV, DEVICES

    p.add_argument("--device", choices=DEVICES, default=os.environ.get(DEVICE_ENV, "auto"),
                   help=f"where the models run (${DEVICE_ENV})")


def add_pipeline_args(p: argparse.ArgumentParser, tag_head: bool = True) -> None:
    """Add the options that configure a :class:`~tagging.pipeline.Pipeline`.

    Args:
        p: The (sub)command parser.
        tag_head: Add ``--tag-head`` (the tag commands name their head otherwise).
    """
    from tagging.pipeline import PipelineConfig

    p.add_argument("--num-frames", type=int, default=PipelineConfig.num_frames, help="frames sampled per video")
    p.add_argument("--top-k", type=int, default=5, help="tags kept per video")
    p.add_argument("--taxonomy", help="taxonomy JSON file (default: the packaged one)")
    p.add_argument("--clip-model", help="use CLIP (hub id or local dir) instead of EfficientNet for frames")
    p.add_argument("--cb2cf-model", default=os.environ.get("TAGGING_CB2CF_MODEL"), help="CB2CF model dir: fill the CF vector")
    if tag_head:
        p.add_argument("--tag-head", default=os.environ.get("TAGGING_TAG_HEAD"), help="trained tag head dir (tagging train-tags)")
    p.add_argument("--no-speech", action="store_true", help="skip speech recognition")
    p.add_argument("--no-ocr", action="store_true", help="skip on-screen text recognition")
    p.add_argument("--policy-screen", choices=("off", "on", "auto"), default="off", help="NudeNet explicit-imagery screen")
    add_device_arg(p)


def pipeline_config(args: argparse.Namespace) -> Any:
    """Build the ``PipelineConfig`` that :func:`add_pipeline_args` options describe (and apply ``--device``)."""
    from tagging.pipeline import PipelineConfig
    from tagging.runtime import set_device

    set_device(getattr(args, "device", "auto"))

    cfg = PipelineConfig(num_frames=args.num_frames, taxonomy=args.taxonomy, cb2cf_model=args.cb2cf_model,
                         tag_head=getattr(args, "tag_head", None))
    if args.clip_model:
        cfg.frames_extractor, cfg.frames_config = "clip", {"model": args.clip_model}
    cfg.tagger.top_k = args.top_k
    cfg.enrich.speech, cfg.enrich.ocr, cfg.enrich.policy_screen = not args.no_speech, not args.no_ocr, args.policy_screen
    return cfg
