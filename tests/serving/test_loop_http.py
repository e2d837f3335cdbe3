"""The loop's and the interests' HTTP routes, and recommendations a user would accept, on a real server
(uvicorn on a free port), LanceDB in a tmp dir, the real MiniLM text extractor and a planted CF space."""

from __future__ import annotations

import pytest
from serving_helpers import TextFakePipeline, planted_space, start_server, write_row

from cb2cf.audience import AudienceConfig
from tagging.serving.hook import HookConfig, UploadHook
from tagging.serving.server import ServerConfig, create_app


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("loop")
    planted_space(n_clusters=4, per_cluster=30, dim=4).save(d / "space")
    cfg = HookConfig(db=str(d / "db"), space=str(d / "space"), maintenance_interval_s=None,
                     audience=AudienceConfig(n_clusters=4, near_clusters=1))
    hook = UploadHook(cfg, pipeline=TextFakePipeline(cf_dim=4))
    for i in range(6):  # new videos placed in cluster 3: three tagged "music", three "sports"
        write_row(hook, f"new-{i}", [0.0, 0.0, 0.0, 1.0 - 0.01 * i], tags=["music" if i < 3 else "sports"])
    write_row(hook, "flagged", [0.0, 0.0, 0.0, 2.0], review_passed=False)  # the best score, failed review
    client, stop = start_server(create_app(ServerConfig(hook=cfg), hook=hook))
    yield client
    stop()
    hook.close()


def test_recommendations_skip_seen_and_flagged_cap_tags_and_say_why(server) -> None:
    client = server
    r = client.get("/users/c3_u0/recommendations", params={"k": 6, "new_share": 0.5, "max_tag_share": 0.34})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [it["id"] for it in body["items"]]
    assert "flagged" not in ids and "i3" in ids
    assert body["tag_coverage"]["per_tag"] == {"music": 2, "sports": 2}  # at most floor(0.34 * 6) = 2 per tag
    new = [it for it in body["items"] if it["source"] == "new"]
    assert all(it["reason_kind"] in ("new_content", "exploration_slot") and "tags:" in it["reason"] for it in new)
    seen = new[0]["id"]
    assert client.post(f"/videos/{seen}/interactions", json={"events": [{"user_id": "c3_u0", "event": "view"}]}
                       ).status_code == 200
    again = [it["id"] for it in client.get("/users/c3_u0/recommendations", params={"k": 6, "new_share": 0.5}
                                           ).json()["items"]]
    assert seen not in again and "flagged" not in again


def test_exposure_routes(server) -> None:
    client = server
    r = client.post("/videos/new-0/exposure", json={"creator_id": "someone"})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "pool" and r.json()["stage_users"] == 2  # 2% of 120 users
    got = client.get("/videos/new-0/exposure").json()
    assert got["history"][0]["kind"] == "stage" and got["creator_id"] == "someone"
    flagged = client.post("/videos/flagged/exposure", json={})
    assert flagged.status_code == 409 and flagged.json()["error"] == "NotEligible" and "review" in flagged.json()["detail"]
    assert client.get("/videos/flagged/exposure").status_code == 404  # nothing was written
    assert client.get("/videos/nope/exposure").status_code == 404
    run = client.post("/exposure/run", json={"force": True})
    assert run.status_code == 200 and run.json()["decided"][0]["video_id"] == "new-0"
    assert run.json()["decided"][0]["rule"] and "threshold" in run.json()["decided"][0]


def test_stated_interests_are_placed_stored_and_blended(server) -> None:
    client = server
    body = {"interests": [{"text": "exam revision", "share": 0.25}, {"tag": "music", "share": 0.25}]}
    r = client.put("/users/c1_u0/interests", json=body)
    assert r.status_code == 200, r.text
    got = client.get("/users/c1_u0/interests").json()
    assert [(i["label"], i["kind"], i["share"]) for i in got["interests"]] == [("exam revision", "text", 0.25),
                                                                              ("music", "tag", 0.25)]
    assert all(len(i["vector"]) == 4 for i in got["interests"]) and got["share"] == 0.5
    items = client.get("/users/c1_u0/recommendations", params={"k": 8}).json()["items"]
    stated = [it for it in items if it["reason_kind"] == "stated_interest"]
    assert len(stated) == 4 and {it["interest"] for it in stated} == {"exam revision", "music"}
    assert len({it["id"] for it in items}) == len(items) == 8
    for bad in ({"interests": [{"text": "", "share": 0.2}]}, {"interests": [{"text": "x" * 5000, "share": 0.2}]},
                {"interests": [{"tag": "not-a-tag", "share": 0.2}]}, {"interests": [{"text": "a", "share": 1.5}]},
                {"interests": [{"text": "a", "share": 0.6}, {"text": "b", "share": 0.6}]}, {"interests": []}):
        r = client.put("/users/c1_u0/interests", json=bad)
        assert r.status_code == 400 and r.json()["error"] == "InvalidInterest", (bad, r.text)
    assert client.get("/users/c1_u0/interests").json() == got  # nothing written by a refused request
    assert client.put("/users/nobody/interests", json=body).status_code == 404
