"""The demo: variations stay close to their source, the log has its taste groups, and (slow) the
whole build serves the upload -> tags -> placement -> audience -> interactions -> recommendations flow."""

from __future__ import annotations

import csv
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tagging.demo.build import write_log
from tagging.demo.variations import VARIANTS, make_variations
from tagging.media import decode

ROOT = Path(__file__).resolve().parents[2]


def test_variations_are_new_files_with_the_same_length(tmp_path: Path) -> None:
    src = ROOT / "samples" / "drum_beat.mp4"
    out = make_variations(src, tmp_path, len(VARIANTS))
    assert [p.name for p in out] == [f"drum_beat-{name}.mp4" for name, _, _ in VARIANTS]
    base = decode(src, num_frames=4)
    for p in out:
        m = decode(p, num_frames=4)
        assert p.read_bytes() != src.read_bytes() and not m.errors and m.audio is not None
        assert m.info.duration_s == pytest.approx(base.info.duration_s, abs=0.15)
    with pytest.raises(ValueError):
        make_variations(src, tmp_path, len(VARIANTS) + 1)


def test_the_log_has_known_taste_groups(tmp_path: Path) -> None:
    groups = {"a": ["a1", "a2", "a3"], "b": ["b1", "b2"], "c": ["c1", "c2", "c3"]}
    n = write_log(groups, tmp_path / "log.csv", users_per_group=30, seed=1)
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert len(rows) == n and {r["user_id"].split("-fan-")[0] for r in rows} == set(groups)
    own = Counter(r["item_id"][0] == r["user_id"][0] for r in rows)
    assert own[True] / n > 0.9  # users watch their own group's videos
    assert all(any(r["user_id"] == f"{g}-fan-{i:02d}" for r in rows) for g in groups for i in range(30))


@pytest.mark.slow
def test_the_demo_serves_the_whole_flow(tmp_path: Path, pipeline) -> None:
    """About a minute: 8 clips ingested, a space and a model trained, then the flow over HTTP."""
    from tagging.demo.build import DemoConfig, build_demo

    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    demo = build_demo(DemoConfig(out=str(tmp_path), samples=str(tmp_path / "samples"), variations=2), pipeline)
    assert demo.db.is_dir() and (demo.space / "space.json").exists() and demo.model.is_dir()
    pipeline.config.cb2cf_model, pipeline._cb2cf = str(demo.model), None
    try:
        _flow(demo, pipeline)
    finally:  # the session's pipeline goes back to having no CB2CF model
        pipeline.config.cb2cf_model, pipeline._cb2cf = None, None


def _flow(demo, pipeline) -> None:
    from starlette.testclient import TestClient

    from tagging.serving.hook import HookConfig, UploadHook
    from tagging.serving.server import ServerConfig, create_app

    cfg = HookConfig(db=str(demo.db), space=str(demo.space), pipeline=pipeline.config, maintenance_interval_s=None)
    with TestClient(create_app(ServerConfig(hook=cfg, roots=[str(demo.uploads)]), UploadHook(cfg, pipeline=pipeline))) as c:
        while c.get("/readyz").status_code != 200:
            time.sleep(0.1)
        assert c.get("/videos").json()["total"] == 8 and all(v["cf_model_version"] for v in c.get("/videos").json()["items"])
        right = 0
        for group, new in demo.new.items():
            up = c.post("/videos/by-path", json={"path": new.name, "video_id": new.stem})
            assert up.status_code == 201 and up.json()["tags"] and len(up.json()["cf_vector"]) == 16
            users = c.get(f"/videos/{new.stem}/audience", params={"k": 10, "exploration": 0}).json()["users"]
            right += sum(u["user_id"].startswith(group) for u in users)
        assert right >= 24, right  # of 40: the held-out clips reach their own taste group
        group, new = next(iter(demo.new.items()))
        recs = c.get(f"/users/{group}-fan-00/recommendations", params={"k": 6, "new_share": 0.5}).json()["items"]
        assert {r["source"] for r in recs} == {"warm", "new"}
        events = [{"user_id": f"{g}-fan-{i:02d}", "event": "share"} for g in demo.groups if g != group for i in range(20)]
        warm = c.post(f"/videos/{new.stem}/interactions", json={"events": events}).json()
        assert warm["blend"] > 0.5
        assert np.isfinite(warm["vector"]).all()
