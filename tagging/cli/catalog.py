"""``tagging list``, ``tagging export`` and ``tagging failures``: look at the catalog, take it elsewhere, clean up.

Wired into ``tagging/cli/main.py``'s ``build_parser`` with ``add_commands(sub)``.

Examples:
    tagging list --tag dance --review passed --limit 20
    tagging export --format csv --out catalog.csv
    tagging failures
    tagging failures clear ../shared/data/video/broken.mp4
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tagging.cli.options import HELP_FORMATTER, add_db_arg


def cmd_list(args: argparse.Namespace) -> int:
    """Print the catalog's videos, newest first, one per line (or JSON lines)."""
    from tagging.store.catalog import Catalog
    from tagging.store.queries import list_videos

    try:
        page = list_videos(Catalog(args.db), args.tag, args.review, args.limit, args.offset)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for v in page.items:
        if args.json:
            print(json.dumps(v))
            continue
        review = {True: "passed", False: "FAILED", None: "-"}[v.get("review_passed")]
        tags = ", ".join(f"{t} {s:.2f}" for t, s in zip(v["tags"], v["tag_scores"])) or "(no tags)"
        print(f"{v['video_id']}  {v['duration_s']:6.1f}s  {review:6}  {tags}")
    if not args.json:
        if not page.total:
            print(f"no videos match in {args.db}")
        else:
            shown = f"{page.offset + 1}-{page.offset + len(page.items)}" if page.items else "none"
            print(f"{shown} of {page.total} videos in {args.db}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write ids, tags, scores, review and CF placement of every video to a Parquet or CSV file."""
    from tagging.store.catalog import Catalog
    from tagging.store.queries import export_catalog

    out = args.out or f"catalog.{args.format}"
    n = export_catalog(Catalog(args.db), out, args.format)
    print(f"{n} videos -> {out}")
    return 0


def cmd_failures(args: argparse.Namespace) -> int:
    """List the failures table, or clear it (all of it, or the given uris)."""
    from tagging.store.failures import FailureLog
    from tagging.store.lance import is_missing

    log = FailureLog(args.db) if not is_missing(args.db) else None
    if args.action == "list":
        rows = log.rows() if log else []
        for r in rows:
            print(json.dumps(_jsonable(r)) if args.json else
                  f"{r['uri']}  {r['error_class']}  x{r['attempts']}  {r['failed_at']:%Y-%m-%d %H:%M}  {r['reason']}")
        if not args.json:
            print(f"{len(rows)} failures in {args.db}" + (" (retry with: tagging backfill --retry-failures)" if rows else ""))
        return 0
    if log is None:
        print(f"0 failures cleared ({args.db} does not exist)")
        return 0
    if args.uris:
        known = [u for u in args.uris if u in log.known]
        log.clear(known)
        n = len(known)
    else:
        n = log.clear_all()
    print(f"{n} failures cleared in {args.db}")
    return 0


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def add_commands(subparsers: Any) -> None:
    """Add ``list``, ``export`` and ``failures`` to the ``tagging`` subparsers."""
    p = subparsers.add_parser("list", help="list the catalog's videos, newest first", formatter_class=HELP_FORMATTER)
    add_db_arg(p)
    p.add_argument("--tag", help="only videos with this tag (a taxonomy id)")
    p.add_argument("--review", choices=("passed", "failed"), help="only videos whose review gate passed / failed")
    p.add_argument("--limit", type=int, default=50, help="videos to print")
    p.add_argument("--offset", type=int, default=0, help="videos to skip")
    p.add_argument("--json", action="store_true", help="one JSON object per video")
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("export", help="write ids, tags, scores, review and CF placement to Parquet or CSV",
                              formatter_class=HELP_FORMATTER)
    add_db_arg(p)
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="file format")
    p.add_argument("--out", help="output file (default: catalog.<format>)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("failures", help="list or clear the failures table of backfills",
                              formatter_class=HELP_FORMATTER)
    p.add_argument("action", nargs="?", choices=("list", "clear"), default="list", help="what to do")
    p.add_argument("uris", nargs="*", help="with clear: only these uris (default: all)")
    add_db_arg(p)
    p.add_argument("--json", action="store_true", help="list as JSON lines")
    p.set_defaults(func=cmd_failures)
