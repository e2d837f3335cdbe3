"""Build the demo: catalog, interaction log with known taste groups, CF space and CB2CF model.

From the bundled samples (``samples/*.mp4``, one *taste group* per sample) and generated
variations of each (:mod:`tagging.demo.variations`):

1. the original and all but the last variation of each sample are ingested into the catalog
   (``<out>/tagging.lancedb``); the last variation of each sample is held out in
   ``<out>/demo/uploads/`` as a brand-new upload to try the service with;
2. a synthetic interaction log (``<out>/demo/interactions.csv``): every user belongs to one
   group and watches most of that group's videos, and now and then another one;
3. ``cb2cf train-space`` on that log -> ``<out>/cf_space``;
4. ``tagging export-features`` + ``cb2cf train`` -> ``<out>/models/video-cb2cf``;
5. the catalog rows get their ``cf_vector`` from that model.

The paths are the ones the README's ``tagging serve`` example names.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tagging.demo.variations import VARIANTS, make_variations
from tagging.errors import TaggingError
from tagging.inputs import default_video_id, expand_paths, load_captions

logger = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """What the demo builds.

    Attributes:
        out: Where ``tagging.lancedb``, ``cf_space/``, ``models/video-cb2cf`` and ``demo/`` go.
        samples: Folder of sample clips (with ``captions.json``); one taste group per clip.
        variations: Variations generated per sample (1-4); the last one is held out as a new upload.
        users_per_group: Synthetic users per taste group.
        factors: Dimension of the CF space.
        seed: Seed of the interaction log, the space and the model.
        train_seconds: Time limit of CB2CF training.
    """

    out: str = "."
    samples: str = "samples"
    variations: int = 3
    users_per_group: int = 40
    factors: int = 16
    seed: int = 0
    train_seconds: float = 60.0


@dataclass
class Demo:
    """What was built, and where."""

    db: Path
    space: Path
    model: Path
    uploads: Path
    log: Path
    groups: dict[str, list[str]] = field(default_factory=dict)  # group -> its catalog video ids
    new: dict[str, Path] = field(default_factory=dict)  # group -> its held-out upload
    seconds: float = 0.0


def _media(cfg: DemoConfig, work: Path) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Catalog items (path, caption, video_id, group) and the held-out upload of each group."""
    samples = [p for p in expand_paths([cfg.samples]) if p.suffix == ".mp4"]
    if not samples:
        raise TaggingError(cfg.samples, "no .mp4 sample clips here (run from the repository root, or pass --samples)")
    if not 1 <= cfg.variations <= len(VARIANTS):
        raise TaggingError("demo", f"variations must be in 1..{len(VARIANTS)}")
    captions = load_captions([cfg.samples])
    items, held_out, upload_captions = [], {}, {}
    for src in samples:
        group, caption = src.stem, captions.get(src.name)
        files = [src, *make_variations(src, work / "media", cfg.variations)]
        new = (work / "uploads" / files[-1].name)
        new.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(files[-1], new)
        held_out[group], upload_captions[new.name] = new, caption
        items += [{"path": f, "caption": caption, "video_id": default_video_id(f), "group": group} for f in files[:-1]]
    (work / "uploads" / "captions.json").write_text(json.dumps(upload_captions, indent=2))
    return items, held_out


def write_log(groups: dict[str, list[str]], path: Path, users_per_group: int, seed: int) -> int:
    """A synthetic interaction log with known taste groups; the number of events written.

    User ``<group>-fan-<i>`` watches each video of its group with probability 0.8 (weight 1-3:
    view, completion, like) and each other video with probability 0.03 (weight 1).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for group, own in groups.items():
        others = [v for g, vids in groups.items() if g != group for v in vids]
        for i in range(users_per_group):
            user = f"{group}-fan-{i:02d}"
            liked = [v for v in own if rng.random() < 0.8] or [own[i % len(own)]]
            rows += [(user, v, int(rng.integers(1, 4))) for v in liked]
            rows += [(user, v, 1) for v in others if rng.random() < 0.03]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "weight"])
        w.writerows(rows)
    return len(rows)


def _cb2cf(argv: list[str]) -> None:
    """Run a ``cb2cf`` command (the same a user would type), logging it.

    Raises:
        TaggingError: It failed.
    """
    from cb2cf.cli import main as cb2cf_main

    logger.info("cb2cf %s", " ".join(argv))
    if cb2cf_main(argv) != 0:
        raise TaggingError("demo", f"cb2cf {argv[0]} failed (see above)")


def build_demo(cfg: DemoConfig, pipeline: Any = None, show_progress: bool = False) -> Demo:
    """Build everything the demo serves (see the module docstring).

    Args:
        cfg: Demo settings.
        pipeline: A loaded :class:`~tagging.pipeline.Pipeline` to use (one is built when None).
        show_progress: Progress bars.

    Raises:
        TaggingError: No samples, a clip that does not ingest, or a training step that fails.
    """
    from tagging import coldstart
    from tagging.pipeline import Pipeline
    from tagging.store.catalog import Catalog
    from tagging.store.writer import BatchWriter

    t0 = time.perf_counter()
    out, work = Path(cfg.out), Path(cfg.out) / "demo"
    demo = Demo(out / "tagging.lancedb", out / "cf_space", out / "models" / "video-cb2cf", work / "uploads",
                work / "interactions.csv")
    items, demo.new = _media(cfg, work)
    pipeline = pipeline or Pipeline()
    catalog = Catalog(demo.db, dims=pipeline.dims(cf_dim=cfg.factors))
    report = pipeline.ingest([{k: v for k, v in it.items() if k != "group"} for it in items], catalog, show_progress)
    if report.failures:
        f = report.failures[0]
        raise TaggingError(f.source, f"demo clip did not ingest: {f.error_class}: {f.reason}")
    for it in items:
        demo.groups.setdefault(it["group"], []).append(it["video_id"])
    n = write_log(demo.groups, demo.log, cfg.users_per_group, cfg.seed)
    logger.info("%d events from %d users in %d taste groups -> %s", n, cfg.users_per_group * len(demo.groups),
                len(demo.groups), demo.log)
    _cb2cf(["train-space", "--log", str(demo.log), "--out", str(demo.space), "--space-id", "demo",
            "--factors", str(cfg.factors), "--iterations", "15", "--seed", str(cfg.seed)])
    features = work / "features.npz"
    coldstart.export_features(catalog, features)
    _cb2cf(["train", "--features", str(features), "--space", str(demo.space), "--interactions", str(demo.log),
            "--out", str(demo.model), "--name", "video-cb2cf", "--val-frac", "0.25", "--seed", str(cfg.seed),
            "--max-seconds", str(cfg.train_seconds),
            # a dozen videos cannot validate a model: it is saved marked "not fit to deploy", which a demo is
            "--allow-unvalidated"])
    model = coldstart.load_model(demo.model, pipeline.extractors)
    with BatchWriter(catalog) as writer:
        coldstart.update_cf(catalog, model, [it["video_id"] for it in items], writer)
    demo.seconds = time.perf_counter() - t0
    return demo
