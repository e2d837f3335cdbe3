"""``tagging`` command line: a thin layer over the library.

Examples:
    tagging ingest samples/                 # every clip in the folder, captions from samples/captions.json
    tagging ingest clip.mp4 --caption "Street dance battle #dance" --json
    tagging show ocean_waves-1a2b3c4d5e --db tagging.lancedb
    tagging list --tag music                # more in cli/catalog.py (list, export, failures)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from tagging.cli.options import (
    HELP_FORMATTER,
    add_config_arg,
    add_db_arg,
    add_pipeline_args,
    apply_config,
    config_path,
    pipeline_config,
    read_config,
)
from tagging.errors import TaggingError

logger = logging.getLogger(__name__)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Analyse files and upsert them into the catalog; print tags and timings per video."""
    from tagging.pipeline import Pipeline, expand_paths, load_captions
    from tagging.store.catalog import Catalog

    roots = [Path(p) for p in args.paths]
    captions = load_captions(roots, args.captions)
    files = expand_paths(roots)
    if args.video_id and len(files) != 1:
        print("error: --video-id needs exactly one file", file=sys.stderr)
        return 2
    items = []
    for f in files:
        caption = args.caption if args.caption is not None else captions.get(f.name)
        items.append({"path": f, "caption": caption, "video_id": args.video_id})
    pipeline = Pipeline(pipeline_config(args))  # cheap: every model loads on first use
    items, refused = pipeline.check_inputs(items)  # bad files are refused before any model loads
    for f in refused:
        _print_failure(f, args.json)
    if not items:
        return 1
    preload = _preload_text(pipeline)
    catalog = Catalog(args.db, dims=pipeline.dims())
    report = pipeline.ingest(items, catalog, show_progress=args.progress)
    report.failures[:0] = refused
    preload.join()  # never leave a thread importing while the interpreter exits
    for r in report.results:
        if args.json:
            print(json.dumps(r.summary()))
        else:
            tags = ", ".join(f"{t.id} {t.score:.2f}" for t in r.tags) or "(none)"
            total = sum(r.timings.values())
            print(f"{r.video_id}  [{tags}]  {total * 1000:.0f} ms")
    for f in report.failures[len(refused):]:
        _print_failure(f, args.json)
    if not args.json:
        print(f"{len(report.results)} ingested, {len(report.failures)} failed -> {args.db} ({catalog.count()} rows)")
    return 1 if report.failures else 0


def _preload_text(pipeline: Any) -> Any:
    """Load the text model (with the tag embeddings) in a thread while decoding and the frame and audio models run.

    A cold process spends most of its time importing and loading; on two cores the two overlap
    (about 1.4x faster to the first result here). The model still loads once (``cached_model``).
    Only the text side: loading the audio stack in a second thread crashed librosa's first run.
    """
    import threading

    def run() -> None:
        try:
            pipeline.tagger.prepare()
        except TaggingError as exc:  # the main thread meets it again and reports it
            logger.info("preloading the text model failed: %s", exc)

    thread = threading.Thread(target=run, name="preload-text", daemon=True)
    thread.start()
    return thread


def _print_failure(f: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"source": f.source, "error": f.error_class, "reason": f.reason}), flush=True)
    print(f"error: {f.source}: {f.error_class}: {f.reason}", file=sys.stderr, flush=True)


def cmd_show(args: argparse.Namespace) -> int:
    """Print one catalog row as JSON (vectors summarised, JSON columns decoded); reading creates nothing."""
    from tagging.store.catalog import VECTOR_COLUMNS, Catalog, jsonable_row

    row = Catalog(args.db).get(args.video_id)
    if row is None:
        print(f"error: {args.video_id}: not in {args.db}", file=sys.stderr)
        return 2
    out = jsonable_row(row)
    for key in VECTOR_COLUMNS:
        if out.get(key) is not None:
            out[key] = f"<{len(out[key])} floats>"
    for key in ("thumbnail", "frame_thumbs"):  # JPEGs for the web page (jsonable_row leaves them out)
        if row.get(key) is not None:
            out[key] = f"<{len(row[key])} {'bytes' if key == 'thumbnail' else 'JPEGs'}>"
    print(json.dumps(out, default=str, indent=2))
    return 0


def cmd_export_features(args: argparse.Namespace) -> int:
    """Write the catalog's per-modality vectors as a CB2CF feature table (.npz)."""
    from tagging.coldstart import export_features
    from tagging.store.catalog import Catalog

    n = export_features(Catalog(args.db), args.out)
    print(f"{n} videos -> {args.out} "
          f"(train with: cb2cf train --features {args.out} --space SPACE --interactions LOG --out models/NAME)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so other commands can add subcommands)."""
    parser = argparse.ArgumentParser(prog="tagging", description="Tag new videos and store them in a LanceDB catalog.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    add_config_arg(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="analyse videos and upsert them into the catalog",
                       formatter_class=HELP_FORMATTER)
    p.add_argument("paths", nargs="+", help="media files or folders of them")
    p.add_argument("--caption", help="caption text for the file(s)")
    p.add_argument("--captions", help="JSON file mapping file name -> caption (default: captions.json in each folder)")
    p.add_argument("--video-id", help="catalog id (single file only; default derived from name and content)")
    add_db_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per video")
    add_pipeline_args(p)
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    add_config_arg(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("show", help="print one catalog row",
                       formatter_class=HELP_FORMATTER)
    p.add_argument("video_id")
    add_db_arg(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export-features", help="write catalog vectors as a CB2CF feature table (.npz)",
                       formatter_class=HELP_FORMATTER)
    add_db_arg(p)
    p.add_argument("--out", required=True, help="output .npz")
    p.set_defaults(func=cmd_export_features)

    from tagging.cli.catalog import add_commands as add_catalog_commands

    add_catalog_commands(sub)  # list, export, failures

    from tagging.cli.serve import add_commands as add_serving_commands

    add_serving_commands(sub)  # serve, backfill

    from tagging.cli.tags import add_commands as add_tag_commands

    add_tag_commands(sub)  # train-tags, evaluate

    from tagging.cli.demo import add_commands as add_demo_commands

    add_demo_commands(sub)  # demo
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line, with the option defaults of the config file (``--config`` / ``$TAGGING_CONFIG``).

    Raises:
        TaggingError: The config file is unreadable or names an unknown option.
    """
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    path = config_path(argv)
    if path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        apply_config(sub.choices, read_config(path), path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tagging`` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        args = parse_args(argv)
    except TaggingError as exc:
        print(f"error: {exc.source}: {type(exc).__name__}: {exc.reason}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except TaggingError as exc:
        print(f"error: {exc.source}: {type(exc).__name__}: {exc.reason}", file=sys.stderr)
        return 2  # refused (as cb2cf's CLI): 1 means it ran but some items failed
    except BrokenPipeError:  # `tagging show ID | head`: the reader has gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
