"""``tagging demo``: build a small catalog, audience, CF space and CB2CF model from ``samples/``, then serve it.

Wired into ``tagging/cli/main.py``'s ``build_parser`` with ``add_commands(sub)``.

Examples:
    tagging demo                      # from the repository root; serves on http://127.0.0.1:8000
    tagging demo --no-serve           # build only; then the README's `tagging serve ...` line works
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tagging.cli.options import HELP_FORMATTER


def tour(demo: Any, url: str) -> str:
    """What to try once the service runs: upload -> tags -> placement -> audience -> interactions -> recommendations."""
    group, new = next(iter(demo.new.items()))
    fan = f"{group}-fan-00"
    other = next(g for g in demo.groups if g != group)
    return f"""
Taste groups (users <group>-fan-NN watch mostly their group's videos): {", ".join(demo.groups)}
Held-out new uploads (never watched by anyone): {demo.uploads}/

Try it:
  curl -s -F file=@{new} -F video_id={new.stem} {url}/videos | python -m json.tool | head -40
  curl -s '{url}/videos/{new.stem}/audience?k=10&exploration=0'    # mostly {group}-fan-NN users
  curl -s '{url}/videos/{new.stem}/similar?space=cf&k=5'            # its neighbours in the CF space
  curl -s -X POST {url}/videos/{new.stem}/interactions -H 'content-type: application/json' \\
       -d '{{"events": [{{"user_id": "{other}-fan-01", "event": "like"}}, {{"user_id": "{other}-fan-02", "event": "share"}}]}}'
  curl -s '{url}/users/{fan}/recommendations?k=5&new_share=0.4'     # warm items plus new videos, with why
  curl -s '{url}/videos?tag=music&limit=5'                        # the catalog; API docs at {url}/docs

The same service later:
  tagging serve --db {demo.db} --root {demo.uploads} --space {demo.space} --cb2cf-model {demo.model} --port 8000
"""


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the demo (a few minutes on a laptop CPU) and serve it unless ``--no-serve``."""
    from tagging.demo.build import DemoConfig, build_demo
    from tagging.pipeline import Pipeline

    cfg = DemoConfig(out=args.out, samples=args.samples, variations=args.variations,
                     users_per_group=args.users_per_group, seed=args.seed, train_seconds=args.train_seconds)
    print(f"building the demo from {cfg.samples}/ into {cfg.out} (models load, clips are analysed, "
          "a CF space and a CB2CF model are trained) ...", flush=True)
    pipeline = Pipeline()
    demo = build_demo(cfg, pipeline, show_progress=sys.stderr.isatty())
    n = sum(len(v) for v in demo.groups.values())
    print(f"demo built in {demo.seconds:.0f} s: {n} videos in {demo.db}, CF space {demo.space} "
          f"({len(demo.groups) * cfg.users_per_group} users), CB2CF model {demo.model}")
    url = f"http://{args.host}:{args.port}"
    print(tour(demo, url))
    if args.no_serve:
        return 0
    from tagging.serving.hook import HookConfig, UploadHook
    from tagging.serving.server import ServerConfig, serve

    pipeline.config.cb2cf_model = str(demo.model)  # the loaded models place new uploads with the new model
    hook_cfg = HookConfig(db=str(demo.db), space=str(demo.space), pipeline=pipeline.config)
    config = ServerConfig(hook=hook_cfg, roots=[str(demo.uploads)])
    serve(config, args.host, args.port, "warning", hook=UploadHook(hook_cfg, pipeline=pipeline))
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``demo`` to the ``tagging`` subparsers."""
    from tagging.demo.build import DemoConfig

    d = DemoConfig()
    p = subparsers.add_parser("demo", help="build a demo catalog, audience, CF space and CB2CF model, then serve them",
                              formatter_class=HELP_FORMATTER)
    p.add_argument("--out", default=d.out, help="where tagging.lancedb, cf_space/, models/video-cb2cf and demo/ go")
    p.add_argument("--samples", default=d.samples, help="folder of sample clips, one taste group each")
    p.add_argument("--variations", type=int, default=d.variations,
                   help="variations per sample (1-4); the last is held out as a new upload")
    p.add_argument("--users-per-group", type=int, default=d.users_per_group, help="synthetic users per taste group")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the log, space and model")
    p.add_argument("--train-seconds", type=float, default=d.train_seconds, help="time limit of CB2CF training")
    p.add_argument("--host", default="127.0.0.1", help="bind address")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--no-serve", action="store_true", help="build only")
    p.set_defaults(func=cmd_demo)
