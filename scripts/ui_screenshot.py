"""Screenshot the web page (the README's docs/ui-video.png) from real clips, in headless Chromium.

    python scripts/ui_screenshot.py /work/shared/data/video/*.mp4 --show decord_flipping_a_pancake \\
        --out docs/ui-video.png --phone-out /tmp/ui-video-phone.png

The clips are ingested with the shipped models into a temporary catalog, which ``create_app``
serves on localhost. Without ``--space`` and ``--cb2cf-model`` it makes a synthetic CF space
(four taste groups) and an *untrained* CB2CF model for the pipeline's views: the placement and
audience sections then show the page's layout, not a learnt placement. Needs /usr/bin/chromium
and the ``playwright`` package (no browser download).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GROUPS = ("music", "sports", "food", "animals")


def synthetic_space(out: Path, dim: int = 8, per_group: int = 25, seed: int = 0) -> Path:
    """Users and warm items in taste groups along orthogonal axes (``food-fan-03``, ``food-hit-1``)."""
    from cb2cf.space import CFSpace

    rng = np.random.default_rng(seed)
    users, uvec, items, ivec = [], [], [], []
    for g, name in enumerate(GROUPS):
        axis = np.eye(dim)[g]
        users += [f"{name}-fan-{i:02d}" for i in range(per_group)]
        uvec += [axis + rng.normal(scale=0.15, size=dim) for _ in range(per_group)]
        items += [f"{name}-hit-{j}" for j in range(3)]
        ivec += [axis + rng.normal(scale=0.2, size=dim) for _ in range(3)]
    CFSpace("synthetic-tastes", "v1", np.array(users), np.array(uvec, np.float32), np.array(items),
            np.array(ivec, np.float32)).save(out)
    return out


def untrained_model(out: Path, space_dir: Path) -> Path:
    """A randomly initialised CB2CF model for the default pipeline's views, bound to ``space_dir``."""
    import torch

    from cb2cf.model import CB2CF
    from cb2cf.space import CFSpace
    from tagging.pipeline import Pipeline

    pipe, space = Pipeline(), CFSpace.load(space_dir)
    torch.manual_seed(0)
    model = CB2CF({m: e.dim for m, e in pipe.extractors.items()}, space.dim, tower_dim=32, hidden_dim=32)
    model.manifest = {"name": "untrained-for-screenshot", "cf_space": {"id": space.space_id, "version": space.version},
                      "views": [{"name": m, "dim": e.dim, "extractor_id": e.extractor_id} for m, e in pipe.extractors.items()]}
    return model.save(out)


def serve_catalog(clips: list[Path], work: Path, space: Path, model: Path) -> tuple[str, object]:
    """Ingest ``clips`` and serve them; return the base URL and the uvicorn server."""
    import uvicorn

    from cb2cf.audience import AudienceConfig
    from tagging.pipeline import PipelineConfig
    from tagging.serving.hook import HookConfig, UploadHook
    from tagging.serving.server import ServerConfig, create_app

    cfg = HookConfig(db=str(work / "db"), space=str(space), pipeline=PipelineConfig(cb2cf_model=str(model)),
                     maintenance_interval_s=None, audience=AudienceConfig(n_clusters=len(GROUPS), near_clusters=1))
    hook = UploadHook(cfg)
    hook.start()
    for clip in clips:
        hook(clip, video_id=clip.stem, caption=clip.stem.split("_", 1)[-1].replace("_", " "), source_uri=f"file://{clip.name}")
        print(f"ingested {clip.name}")
    app = create_app(ServerConfig(hook=cfg), hook=hook)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not (srv.started and hook.ready):
        time.sleep(0.2)
    port = srv.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", srv


def main() -> None:
    """Parse arguments, build the catalog, take the screenshots."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--show", help="video id (file stem) of the page to capture (default: the first clip)")
    ap.add_argument("--out", type=Path, default=Path("docs/ui-video.png"))
    ap.add_argument("--phone-out", type=Path, help="also capture the page 390 px wide")
    ap.add_argument("--space", type=Path, help="a saved CF space (default: a synthetic one)")
    ap.add_argument("--cb2cf-model", type=Path, help="a CB2CF model for that space (default: an untrained one)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="ui-shot-"))
    space = args.space or synthetic_space(work / "space")
    model = args.cb2cf_model or untrained_model(work / "cb2cf", space)
    base, srv = serve_catalog(args.clips, work, space, model)
    url = f"{base}/ui/videos/{args.show or args.clips[0].stem}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        shots = [(args.out, {"width": 1100, "height": 900})] + ([(args.phone_out, {"width": 390, "height": 844})]
                                                                  if args.phone_out else [])
        for out, viewport in shots:
            page = browser.new_page(viewport=viewport)
            page.goto(url, wait_until="networkidle")
            page.screenshot(path=str(out), full_page=True)
            print(f"{url} -> {out}")
        browser.close()
    srv.should_exit = True


if __name__ == "__main__":
    main()
