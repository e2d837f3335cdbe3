"""The HTTP service, started for real on a free port and spoken to over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serving_helpers import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]


def test_upload_without_id_is_idempotent(server) -> None:
    client, root, _ = server
    ids = []
    for _ in range(2):
        with open(root / "clip.mp4", "rb") as fh:
            r = client.post("/videos", files={"file": ("My Clip.mp4", fh, "video/mp4")})
        assert r.status_code == 201, r.text
        ids.append(r.json()["video_id"])
        assert r.json()["source_uri"] == "upload://My-Clip.mp4"
    assert ids[0] == ids[1] and ids[0].startswith("My-Clip-")  # same bytes + name -> same row


def test_ops_endpoints(server) -> None:
    client, _, _ = server
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["ready"] is True
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/videos", "/videos/by-path", "/videos/{video_id}", "/videos/{video_id}/audience",
            "/videos/{video_id}/interactions"} <= set(paths)
    assert "swagger" in client.get("/docs").text.lower()


def test_upload_get_audience_and_warm_up(server) -> None:
    client, root, _ = server
    with open(root / "clip.mp4", "rb") as fh:
        r = client.post("/videos", files={"file": ("clip.mp4", fh, "video/mp4")},
                        data={"video_id": "up-1", "caption": "hello", "metadata": '{"creator": "c9"}'})
    assert r.status_code == 201, r.text
    row = r.json()
    assert row["video_id"] == "up-1" and row["tags"] == ["music"] and len(row["cf_vector"]) == 4
    assert len(row["audience"]) == 20 and {u["reason"] for u in row["audience"]} == {"score", "exploration"}
    got = client.get("/videos/up-1").json()
    assert got["caption"] == "hello" and "fused_vector" not in got
    assert len(client.get("/videos/up-1", params={"vectors": True}).json()["fused_vector"]) == 16

    aud = client.get("/videos/up-1/audience", params={"k": 10, "exploration": 0}).json()
    assert aud["blend"] == 0.0 and [u["user_id"][:2] for u in aud["users"]] == ["c3"] * 10  # prior (.1,.2,.3,.4)
    events = [{"user_id": f"c0_u{i}", "event": e} for i in range(30) for e in ("view", "completion", "share")]
    warm = client.post("/videos/up-1/interactions", json={"events": events})
    assert warm.status_code == 200, warm.text
    assert warm.json()["recorded"] == 90 and warm.json()["blend"] > 0.9
    aud = client.get("/videos/up-1/audience", params={"k": 10, "exploration": 0}).json()
    assert [u["user_id"][:2] for u in aud["users"]] == ["c0"] * 10  # graduated towards the users who engaged
    assert client.get("/videos/up-1/vector").json()["vector"][0] > 0.9


def test_recommendations_mix_warm_items_and_new_videos(server) -> None:
    client, root, _ = server
    for vid in ("rec-1", "rec-2", "rec-folded"):  # new videos, CB2CF prior (.1, .2, .3, .4)
        with open(root / "clip.mp4", "rb") as fh:
            up = client.post("/videos", files={"file": ("clip.mp4", fh, "video/mp4")}, data={"video_id": vid})
        assert up.status_code == 201
    # rec-folded is folded toward cluster 3 (the user's own, users other than c3_u0): scored with its current
    # vector it beats the other new videos; scored with its prior it would tie with them at 0.4
    events = [{"user_id": f"c3_u{i}", "event": e} for i in range(1, 30) for e in ("view", "completion", "share")]
    assert client.post("/videos/rec-folded/interactions", json={"events": events}).json()["blend"] > 0.9
    r = client.get("/users/c3_u0/recommendations", params={"k": 4, "new_share": 0.5})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    warm = [it for it in items if it["source"] == "warm"]
    assert len(items) == 4 and warm[0]["id"] == "i3" and items[0]["id"] in ("i3", "rec-folded")
    assert warm[0]["score"] == pytest.approx(1.0, abs=0.05) and "collaborative" in warm[0]["reason"]
    new = [it for it in items if it["source"] == "new"]
    # 2 slots reserved and "music" may cover at most half the list (max_tag_share 0.5): two new videos
    assert len(new) == 2 and all(client.get(f"/videos/{it['id']}").status_code == 200 for it in new)
    assert r.json()["tag_coverage"]["per_tag"] == {"music": 2}
    folded, other = new if new[0]["id"] == "rec-folded" else new[::-1]
    assert folded["id"] == "rec-folded" and folded["score"] > 0.8 and "folded in with interactions" in folded["reason"]
    assert other["score"] == pytest.approx(0.4, abs=0.05) and "its content (CB2CF)" in other["reason"]  # u . prior
    assert all(it["tags"] == ["music"] for it in new)
    few = client.get("/users/c3_u0/recommendations", params={"k": 1, "new_share": 0}).json()["items"]
    assert few == [items[0]]  # no reserved slot: the best item overall
    r = client.get("/users/nobody/recommendations")
    assert r.status_code == 404 and r.json()["error"] == "UnknownUser"
    assert client.get("/users/c3_u0/recommendations", params={"new_share": 1.5}).status_code == 422


@pytest.mark.parametrize("path, status", [("../outside/secret.mp4", 403), ("/etc/passwd", 403),
                                          ("escape.mp4", 403), ("missing.mp4", 404), ("clip.mp4", 201)])
def test_by_path_is_confined_to_the_roots(server, path: str, status: int) -> None:
    client, _, _ = server
    r = client.post("/videos/by-path", json={"path": path, "video_id": "p-1"})
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["error"] == "PathNotAllowed" and "outside the allowed roots" in r.json()["detail"]


def test_bad_requests_get_clear_4xx(server) -> None:
    client, _, _ = server
    r = client.post("/videos", files={"file": ("big.mp4", b"\0" * 300_000, "video/mp4")})
    assert r.status_code == 413 and "larger than 200000" in r.json()["detail"]
    r = client.post("/videos", files={"file": ("x.mp4", os.urandom(4096), "video/mp4")})
    assert r.status_code == 422 and r.json()["error"] == "VideoOpenFailure"
    r = client.post("/videos", files={"file": ("x.mp4", b"abc", "video/mp4")}, data={"metadata": "{not json"})
    assert r.status_code == 422 and "metadata is not valid JSON" in r.json()["detail"]
    r = client.post("/videos/by-path", json={"video_id": "x"})
    assert r.status_code == 422 and r.json()["source"] == "body.path" and "Field required" in r.json()["detail"]
    r = client.post("/videos/by-path", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert client.get("/videos/bad id!").status_code == 400
    assert client.get("/videos/nope").json()["error"] == "MediaNotFound"
    assert client.post("/videos/nope/interactions", json={"events": []}).status_code == 422
    r = client.post("/videos/up-1/interactions", json={"events": [{"user_id": "u", "event": "dislike"}]})
    assert r.status_code in (400, 404)
    assert client.get("/videos/up-1/audience", params={"exploration": 2}).status_code == 422
    metrics = client.get("/metrics").text
    assert 'tagging_failures_total{error_class="PathNotAllowed"}' in metrics
    assert 'tagging_http_requests_total{method="POST",route="/videos",status="413"}' in metrics
    assert "tagging_http_request_seconds_bucket" in metrics


def test_tagging_serve_command_answers(tmp_path: Path) -> None:
    """The real command, with an API token: probes stay open, everything else needs the bearer token."""
    port = free_port()
    (tmp_path / "token").write_text("s3cret\n")
    cmd = [sys.executable, "-m", "tagging.cli", "serve", "--db", str(tmp_path / "db"), "--port", str(port),
           "--api-token-file", str(tmp_path / "token")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_ready(client, "/healthz", timeout=90)
            assert client.get("/readyz").status_code in (200, 503)
            denied = client.get("/videos")
            assert denied.status_code == 401 and denied.json()["error"] == "Unauthorized"
            assert client.get("/videos/x", headers={"Authorization": "Bearer wrong"}).status_code == 401
            ok = client.get("/videos", headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code in (200, 503) and ok.json() != denied.json()
            docs = client.get("/docs")  # the docs open without the token, and ask for it (Authorize)
            assert docs.status_code == 200 and client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
            schema = client.get("/openapi.json").json()
            assert schema["info"]["title"] == "tagging" and schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    finally:
        proc.terminate()
        proc.wait(30)
