"""Bad input at ``POST /videos/{id}/interactions`` on a real server (uvicorn on a free port, LanceDB in a
tmp dir, a planted CF space): each refusal is a 4xx JSON error naming the item and the reason, and a
refused batch stores nothing - not even its well-formed events."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_helpers import FakePipeline, planted_space, start_server, write_row

from tagging.errors import UnknownUser
from tagging.serving.hook import HookConfig, UploadHook
from tagging.serving.server import ServerConfig, create_app

GOOD = {"user_id": "c0_u1", "event": "like"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("events")
    planted_space(n_clusters=2, per_cluster=10, dim=4).save(d / "space")
    cfg = HookConfig(db=str(d / "db"), space=str(d / "space"), maintenance_interval_s=None)
    hook = UploadHook(cfg, pipeline=FakePipeline())
    write_row(hook, "v1", [1.0, 0.0, 0.0, 0.0])
    write_row(hook, "no-cf", None)
    client, stop = start_server(create_app(ServerConfig(hook=cfg), hook=hook))
    yield client, hook
    stop()
    hook.close()


def _refused(client, video_id: str, body: bytes | dict, status: int, error: str) -> dict:
    kw = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else {"json": body}
    r = client.post(f"/videos/{video_id}/interactions", **kw)
    assert r.status_code == status, r.text
    got = r.json()
    assert set(got) == {"error", "detail", "source"} and got["error"] == error, got
    return got


def test_unknown_users_and_videos_are_refused_whole(server) -> None:
    client, hook = server
    got = _refused(client, "v1", {"events": [GOOD, {"user_id": "stranger", "event": "view"}]}, 404, "UnknownUser")
    assert got["source"] == "stranger" and "'v1'" in got["detail"] and "not in the CF space" in got["detail"]
    got = _refused(client, "nope", {"events": [GOOD]}, 404, "MediaNotFound")
    assert got["source"] == "nope"
    assert hook.interactions.weights("v1") == {} and hook.interactions.weights("nope") == {}  # the good event too
    assert client.get("/videos/v1/vector").json()["blend"] == 0.0


def test_bad_weights_kinds_and_ids_are_refused_and_store_nothing(server) -> None:
    client, hook = server
    for weight in (-1.0, 0.0):
        got = _refused(client, "v1", {"events": [GOOD, GOOD | {"weight": weight}]}, 422, "RequestValidationError")
        assert "weight" in got["source"]
    nan = b'{"events": [{"user_id": "c0_u1", "event": "like"}, {"user_id": "c0_u2", "event": "like", "weight": NaN}]}'
    assert "weight" in _refused(client, "v1", nan, 422, "RequestValidationError")["source"]
    got = _refused(client, "v1", {"events": [GOOD, {"user_id": "c0_u2", "event": "dislike"}]}, 400,
                   "InvalidInteraction")
    assert got["source"] == "v1" and "dislike" in got["detail"]
    assert "user_id" in _refused(client, "v1", {"events": [{"user_id": "", "event": "view"}]}, 422,
                                 "RequestValidationError")["source"]
    _refused(client, "bad id!", {"events": [GOOD]}, 400, "InvalidVideoId")
    assert hook.interactions.weights("v1") == {}


def test_a_409_stores_nothing_and_a_good_batch_is_stored(server) -> None:
    client, hook = server
    got = _refused(client, "no-cf", {"events": [GOOD]}, 409, "TaggingError")
    assert got["source"] == "no-cf" and "CF vector" in got["detail"]
    assert hook.interactions.weights("no-cf") == {}
    ok = client.post("/videos/v1/interactions", json={"events": [GOOD, {"user_id": "c0_u2", "event": "view"}]})
    assert ok.status_code == 200 and ok.json()["recorded"] == 2 and ok.json()["users"] == 2
    assert hook.interactions.weights("v1") == {"c0_u1": 3.0, "c0_u2": 1.0}


def test_a_service_that_accepts_new_users_stores_their_events(tmp_path: Path) -> None:
    planted_space(n_clusters=2, per_cluster=10, dim=4).save(tmp_path / "space")
    base = HookConfig(db=str(tmp_path / "db"), space=str(tmp_path / "space"), maintenance_interval_s=None)
    with UploadHook(base, pipeline=FakePipeline()) as hook:
        write_row(hook, "v1", [1.0, 0.0, 0.0, 0.0])
        hook.writer.flush()
        with pytest.raises(UnknownUser, match="newcomer.*'v1'"):
            hook.record_interactions("v1", [GOOD, {"user_id": "newcomer", "event": "share"}])
        assert hook.interactions.weights("v1") == {}
    with UploadHook(HookConfig(**(vars(base) | {"accept_new_users": True})), pipeline=FakePipeline()) as hook:
        state = hook.record_interactions("v1", [GOOD, {"user_id": "newcomer", "event": "share"}])
        assert state["recorded"] == 2 and state["users"] == 1 and state["unknown_users"] == 1
