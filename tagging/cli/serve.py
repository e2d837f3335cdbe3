"""``tagging serve`` and ``tagging backfill``: subcommands added to the main parser.

Wired into ``tagging/cli/main.py``'s ``build_parser`` with ``add_commands(sub)``.

Examples:
    tagging serve --db tagging.lancedb --root /srv/uploads --port 8000
    tagging backfill ../shared/data/video --db tagging.lancedb --workers 2
    tagging backfill manifest.jsonl --engine ray --workers 4
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
    add_decode_args,
    add_pipeline_args,
    pipeline_config,
)

logger = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    add_db_arg(p)
    p.add_argument("--table", default="videos", help="catalog table")
    add_pipeline_args(p)
    add_decode_args(p)


def api_token(token_file: str | None) -> str | None:
    """The API token from ``token_file`` or ``TAGGING_API_TOKEN`` (None when neither is given).

    Raises:
        SystemExit: A token file cannot be read, or a token was asked for but is empty or not
            printable ASCII (it would silently leave the service open, or lock every client out).
    """
    if token_file:
        try:
            where, raw = token_file, Path(token_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemExit(f"tagging serve: {token_file}: cannot read the API token file "
                             f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    elif "TAGGING_API_TOKEN" in os.environ:
        where, raw = "TAGGING_API_TOKEN", os.environ["TAGGING_API_TOKEN"]
    else:
        return None
    token = raw.strip()
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise SystemExit(f"tagging serve: {where}: the API token must be non-empty printable ASCII without spaces")
    return token


def cmd_serve(args: argparse.Namespace) -> int:
    """Check the configuration, then start the HTTP service under uvicorn; bad configuration exits 2 before binding."""
    from cb2cf.errors import CB2CFError

    try:
        return _serve(args)
    except (CB2CFError, OSError) as exc:  # a CF space that does not load, an address that cannot be bound
        print(f"error: tagging serve: {type(exc).__name__}: {exc}".replace("\n", " "), file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from cb2cf.audience import AudienceConfig
    from tagging.serving.hook import HookConfig
    from tagging.serving.server import ServerConfig, serve

    hook = HookConfig(db=args.db, table=args.table, pipeline=pipeline_config(args), decode_workers=args.workers,
                      decode_timeout_s=args.decode_timeout, decode_memory_mb=args.decode_memory_mb, space=args.space,
                      audience=AudienceConfig(k=args.audience_k, exploration=args.exploration),
                      maintenance_interval_s=args.maintenance_interval or None)
    token = api_token(args.api_token_file)
    if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s without an API token: anyone who can reach it can write", args.host)
    config = ServerConfig(hook=hook, roots=args.root or [], max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                          max_body_bytes=int(args.max_body_kb * 1024), body_timeout_s=args.body_timeout, api_token=token)
    serve(config, args.host, args.port, "info" if args.verbose else "warning")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Backfill a directory, manifest or LanceDB table; print the summary. Exit 1 when anything failed."""
    import logging

    from tagging.serving.backfill.run import BackfillConfig, run_backfill

    if args.verbose:
        logging.getLogger("tagging").setLevel(logging.INFO)
    cfg = BackfillConfig(db=args.db, table=args.table, pipeline=pipeline_config(args), engine=args.engine,
                         workers=args.workers, decode_timeout_s=args.decode_timeout,
                         decode_memory_mb=args.decode_memory_mb, batch_rows=args.batch_rows, batch_videos=args.batch_videos,
                         retry_failures=args.retry_failures, source_table=args.source_table,
                         show_progress=not args.no_progress, ray_address=args.ray_address, ray_write=args.ray_write)
    report = run_backfill(args.catalog, cfg)
    if args.json:
        print(json.dumps(report.to_dict()))
    print(report.summary(), file=sys.stderr if args.json else sys.stdout)
    return 1 if report.failed else 0


def add_commands(subparsers: Any) -> None:
    """Add ``serve`` and ``backfill`` to the ``tagging`` subparsers."""
    p = subparsers.add_parser("serve", help="run the HTTP service (upload hook, rows, audience, warm-up)",
                       formatter_class=HELP_FORMATTER)
    _common(p)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default localhost only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port; the address is printed)")
    p.add_argument("--root", action="append", help="directory POST /videos/by-path may read (repeatable; none: by-path is off)")
    p.add_argument("--max-upload-mb", type=float, default=256.0, help="largest accepted upload (POST /videos)")
    p.add_argument("--max-body-kb", type=float, default=1024.0, help="largest accepted body of every other endpoint")
    p.add_argument("--body-timeout", type=float, default=30.0, help="seconds a request body may stall before 408")
    p.add_argument("--workers", type=int, default=1, help="isolated decode processes")
    p.add_argument("--space", default=os.environ.get("TAGGING_CF_SPACE"), help="CF space dir: audiences and warm-up")
    p.add_argument("--audience-k", type=int, default=300, help="default seed audience size")
    p.add_argument("--exploration", type=float, default=0.1, help="default exploration share of the audience")
    p.add_argument("--maintenance-interval", type=float, default=600.0, help="seconds between optimize runs (0: off)")
    p.add_argument("--api-token-file", help="file holding the bearer token clients must send "
                   "(or set TAGGING_API_TOKEN); /healthz and /readyz stay open")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("backfill", help="ingest a whole catalog: resumable, idempotent, parallel",
                       formatter_class=HELP_FORMATTER)
    p.add_argument("catalog", help="directory of videos, CSV/JSONL manifest (uri, video_id, caption, ...) or LanceDB dir")
    _common(p)
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="where the work runs")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                   help="decode processes (local) or actors (ray)")
    p.add_argument("--batch-rows", type=int, default=32, help="rows per catalog commit")
    p.add_argument("--batch-videos", type=int, default=8,
                   help="videos whose model work runs as one batch (1: one video at a time)")
    p.add_argument("--retry-failures", action="store_true", help="process uris in the failures table again")
    p.add_argument("--source-table", default="videos", help="table to read when CATALOG is a LanceDB directory")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: a local instance)")
    p.add_argument("--ray-write", choices=["driver", "workers"], default="driver",
                   help="with --engine ray: the driver writes every row, or each actor commits its own batches")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_backfill)
