"""Catalog operations over HTTP: list with filters and paging, similar videos (content and CF), take-down."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from serving_helpers import FAKE_DIMS, FakePipeline, _FakeResult, planted_space

from tagging.serving.hook import HookConfig, UploadHook
from tagging.serving.server import ServerConfig, create_app
from tagging.store.catalog import Catalog
from tagging.store.interactions import InteractionStore

# id -> (content axis, cf axis or None, tags, review passed)
VIDEOS = {"a1": (0, 0, ["dance"], False), "a2": (0, 0, ["dance", "music"], True), "a3": (0, 1, ["dance"], True),
          "b1": (1, 1, ["food"], True), "b2": (1, 1, ["food"], True), "c1": (2, None, ["travel"], None)}


def row(vid: str, i: int) -> dict:
    content, cf, tags, passed = VIDEOS[vid]
    rng = np.random.default_rng(i)
    r = _FakeResult(vid, f"caption of {vid}", f"{vid}.mp4").to_row()
    fused = np.eye(FAKE_DIMS.fused)[content] + rng.normal(scale=0.05, size=FAKE_DIMS.fused)
    r |= {"fused_vector": fused.tolist(), "tags": tags, "tag_scores": [0.9] * len(tags), "review_passed": passed,
          "cf_vector": None if cf is None else (np.eye(4)[cf] + rng.normal(scale=0.05, size=4)).tolist(),
          "ingested_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i)}
    return r


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from starlette.testclient import TestClient

    d = tmp_path_factory.mktemp("catalog")
    Catalog(d / "db", dims=FAKE_DIMS).upsert([row(v, i) for i, v in enumerate(VIDEOS)])
    planted_space(n_clusters=2, per_cluster=5, dim=4).save(d / "space")
    cfg = HookConfig(db=str(d / "db"), space=str(d / "space"), maintenance_interval_s=None)
    with TestClient(create_app(ServerConfig(hook=cfg), hook=UploadHook(cfg, pipeline=FakePipeline()))) as c:
        for _ in range(600):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        yield c, d / "db"


def test_list_filters_and_pages(client) -> None:
    c, _ = client
    page = c.get("/videos").json()
    assert page["total"] == 6 and [v["video_id"] for v in page["items"]] == ["c1", "b2", "b1", "a3", "a2", "a1"]
    assert "fused_vector" not in page["items"][0] and "cf_vector" not in page["items"][0]
    assert [v["video_id"] for v in c.get("/videos", params={"tag": "dance"}).json()["items"]] == ["a3", "a2", "a1"]
    assert [v["video_id"] for v in c.get("/videos", params={"review": "failed"}).json()["items"]] == ["a1"]
    both = c.get("/videos", params={"tag": "dance", "review": "passed"}).json()
    assert both["total"] == 2 and {v["video_id"] for v in both["items"]} == {"a2", "a3"}
    paged = c.get("/videos", params={"limit": 2, "offset": 2}).json()
    assert paged["total"] == 6 and [v["video_id"] for v in paged["items"]] == ["b1", "a3"]
    assert c.get("/videos", params={"tag": "nothing-has-it"}).json() == {"total": 0, "offset": 0, "limit": 50, "items": []}


@pytest.mark.parametrize("params", [{"tag": "x' OR 1=1 --"}, {"review": "maybe"}, {"limit": -1}, {"limit": 5000}])
def test_list_refuses_bad_filters(client, params: dict) -> None:
    c, _ = client
    r = c.get("/videos", params=params)
    assert r.status_code == 422 and set(r.json()) == {"error", "detail", "source"}, r.text


def test_similar_by_content_and_by_cf_placement(client) -> None:
    c, _ = client
    content = c.get("/videos/a1/similar", params={"k": 2}).json()
    assert content["space"] == "content" and {v["video_id"] for v in content["items"]} == {"a2", "a3"}
    assert all(v["similarity"] > 0.9 for v in content["items"])
    cf = c.get("/videos/a1/similar", params={"space": "cf", "k": 10}).json()["items"]
    assert cf[0]["video_id"] == "a2" and "c1" not in {v["video_id"] for v in cf} and len(cf) == 4
    assert {v["video_id"] for v in cf[1:]} == {"a3", "b1", "b2"} and cf[1]["similarity"] < 0.5
    r = c.get("/videos/c1/similar", params={"space": "cf"})
    assert r.status_code == 409 and "no CF vector" in r.json()["detail"]
    assert c.get("/videos/zz/similar").status_code == 404
    assert c.get("/videos/a1/similar", params={"space": "other"}).status_code == 422


def test_delete_takes_the_row_and_its_interactions(client) -> None:
    c, db = client
    events = [{"user_id": f"c0_u{i}", "event": "like"} for i in range(3)]
    assert c.post("/videos/b2/interactions", json={"events": events}).json()["recorded"] == 3
    assert c.post("/videos/b1/interactions", json={"events": events[:1]}).status_code == 200
    gone = c.delete("/videos/b2")
    assert gone.status_code == 200 and gone.json() == {"video_id": "b2", "deleted": True, "interactions_deleted": 3, "exposure_deleted": 0}
    assert c.get("/videos/b2").status_code == 404 and c.get("/videos").json()["total"] == 5
    store = InteractionStore(db)
    assert store.weights("b2") == {} and store.weights("b1") == {"c0_u0": 3.0}  # the others stay
    assert c.delete("/videos/b2").status_code == 404
    assert c.delete("/videos/bad id").status_code == 400
    assert "b2" not in {v["video_id"] for v in c.get("/videos/b1/similar", params={"k": 10}).json()["items"]}


def test_catalog_routes_are_in_the_api_description(client) -> None:
    c, _ = client
    paths = c.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/videos"]) and "delete" in paths["/videos/{video_id}"]
    assert "/videos/{video_id}/similar" in paths


def test_empty_catalog_lists_nothing(tmp_path: Path) -> None:
    from tagging.store.queries import list_videos

    assert list_videos(Catalog(tmp_path / "none")).total == 0 and not (tmp_path / "none").exists()
