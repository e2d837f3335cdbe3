"""The web page's routes over HTTP, without a browser: a real server, a model-free pipeline, a planted space."""

from __future__ import annotations

from datetime import UTC, datetime

import media_factory as mf
import numpy as np
import pytest
from serving_helpers import FAKE_DIMS, FakePipeline, planted_space, served

from cb2cf.audience import AudienceConfig
from tagging.media.thumbs import make_thumbnails
from tagging.serving.hook import HookConfig, UploadHook
from tagging.serving.server import ServerConfig, create_app
from tagging.store.catalog import Catalog
from tagging.store.interests import Interest


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("ui-http")
    mf.make_video(d / "clip.mp4", seconds=1.0)
    planted_space(n_clusters=4, per_cluster=30, dim=4).save(d / "space")
    cfg = HookConfig(db=str(d / "db"), space=str(d / "space"), maintenance_interval_s=None,
                     audience=AudienceConfig(k=8, exploration=0.25, n_clusters=4, near_clusters=1))
    hook = UploadHook(cfg, pipeline=FakePipeline())
    with served(create_app(ServerConfig(hook=cfg), hook=hook)) as client:
        yield client, d, hook


def test_empty_catalog_then_uploads(ui) -> None:
    client, d, _ = ui
    r = client.get("/ui/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"] and "No videos yet" in r.text
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
    assert "/ui/" not in client.get("/openapi.json").text  # the page is not part of the API schema
    css = client.get("/ui/static/ui.css")
    assert css.status_code == 200 and "@media" in css.text and "http" not in css.text  # nothing from the internet
    for vid, caption in (("a1", "first clip"), ("b2", "second clip")):
        with open(d / "clip.mp4", "rb") as fh:
            assert client.post("/videos", files={"file": ("clip.mp4", fh)}, data={"video_id": vid, "caption": caption}).status_code == 201
    page = client.get("/ui/").text
    assert 'data-video="a1"' in page and 'data-video="b2"' in page and "2 of 2 videos" in page and "<svg" in page
    assert "1 of 2 videos" in client.get("/ui/", params={"q": "second"}).text
    assert "2 of 2 videos" in client.get("/ui/", params={"tag": "music"}).text  # the fake pipeline tags "music"
    assert "0 of 2 videos" in client.get("/ui/", params={"review": "passed"}).text  # no review in the fake rows
    second = client.get("/ui/", params={"limit": 1, "offset": 1}).text  # paging: newest first
    assert second.count("data-video=") == 1 and 'data-video="a1"' in second and "2–2 of 2" in second
    assert client.get("/ui/", params={"review": "maybe"}).status_code == 422


def test_thumbnails_are_served_from_the_row_or_a_placeholder(ui) -> None:
    client, d, _ = ui
    with open(d / "clip.mp4", "rb") as fh:
        client.post("/videos", files={"file": ("clip.mp4", fh)}, data={"video_id": "nothumb"})
    r = client.get("/ui/thumbs/nothumb.jpg")  # the fake pipeline stores no pictures
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    frames = [np.full((90, 160, 3), 40 * i, np.uint8) for i in range(4)]
    thumbs = make_thumbnails(frames, [0.0, 1.0, 2.0, 3.0])
    v = np.ones(FAKE_DIMS.fused, np.float32) / np.sqrt(FAKE_DIMS.fused)
    Catalog(str(d / "db")).upsert([{
        "video_id": "withthumb", "source_uri": "/x.mp4", "fused_vector": v.tolist(), "tags": ["music"], "tag_scores": [0.5],
        "ingested_at": datetime.now(UTC), "thumbnail": thumbs.poster, "frame_thumbs": thumbs.frames, "frame_times": thumbs.times,
    }])
    r = client.get("/ui/thumbs/withthumb.jpg")
    assert r.headers["content-type"] == "image/jpeg" and r.content == thumbs.poster
    assert client.get("/ui/frames/withthumb/3.jpg").content == thumbs.frames[3]
    assert client.get("/ui/frames/withthumb/9.jpg").headers["content-type"].startswith("image/svg")
    assert client.get("/ui/thumbs/bad..id.jpg").headers["content-type"].startswith("image/svg")  # bad id: no picture
    page = client.get("/ui/videos/withthumb").text
    assert page.count('src="/ui/frames/withthumb/') == 4 and "3.0 s" in page
    assert "withthumb" in client.get("/ui/").text and "thumbnail" not in client.get("/videos/withthumb").json()


def test_video_and_user_pages(ui) -> None:
    client, d, _ = ui
    with open(d / "clip.mp4", "rb") as fh:
        client.post("/videos", files={"file": ("clip.mp4", fh)}, data={"video_id": "v9", "caption": "a caption"})
    page = client.get("/ui/videos/v9")
    assert page.status_code == 200 and "a caption" in page.text and 'id="placement"' in page.text
    assert page.text.count('href="/ui/users/') >= 8  # the seed audience links to user pages
    assert "no interactions yet" in page.text
    client.post("/videos/v9/interactions", json={"events": [{"user_id": "c0_u1", "event": "like"}]})
    assert "Warmed up by <b>1</b> users" in client.get("/ui/videos/v9").text
    user = client.get("/ui/users/c0_u1")
    assert user.status_code == 200 and "why:" in user.text and 'href="/ui/videos/v9"' in user.text
    assert client.get("/ui/go", params={"user": "c0_u1"}, follow_redirects=False).headers["location"] == "/ui/users/c0_u1"


@pytest.mark.parametrize("path, status, text", [
    ("/ui/videos/missing", 404, "not in the catalog"),
    ("/ui/videos/bad..id", 400, "InvalidVideoId"),
    ("/ui/users/nobody", 404, "not in the CF space"),
])
def test_errors_are_html_pages(ui, path: str, status: int, text: str) -> None:
    client, _, _ = ui
    r = client.get(path)
    assert r.status_code == status and "text/html" in r.headers["content-type"] and text in r.text


def test_exposure_section_from_the_cold_start_loop(ui) -> None:
    """A video in the cold-start loop shows its stages and decisions (the loop's real answer)."""
    client, d, _ = ui
    with open(d / "clip.mp4", "rb") as fh:
        client.post("/videos", files={"file": ("clip.mp4", fh)}, data={"video_id": "in-loop"})
    assert 'id="exposure"' not in client.get("/ui/videos/in-loop").text  # not in the loop: no section
    entered = client.post("/videos/in-loop/exposure", json={})
    assert entered.status_code == 201, entered.text
    first = entered.json()["history"][0]
    page = client.get("/ui/videos/in-loop").text
    assert 'id="exposure"' in page and f"stage {first['stage']}" in page
    assert f"shown to {entered.json()['exposed_users']} users" in page
    assert client.post("/exposure/run", json={"force": True}).status_code == 200  # decide the stage now
    decisions = [h for h in client.get("/videos/in-loop/exposure").json()["history"] if h["kind"] == "decision"]
    page = client.get("/ui/videos/in-loop").text
    assert decisions and f"<b>{decisions[0]['action']}</b>" in page
    assert 'aria-label="engagement per impression per stage"' in page  # the stage's engagement as a chart
    assert 'id="exposure"' not in client.get("/ui/videos/a1").text  # a video outside the loop


def test_stated_interests_on_the_user_page(ui) -> None:
    client, _, hook = ui
    assert 'id="interests"' not in client.get("/ui/users/c1_u2").text
    # stored as PUT /users/{id}/interests leaves them (placing a text needs a CB2CF text view; see test_loop_http)
    hook.interest_store.put("c1_u2", [Interest("baking bread", "text", 0.3, np.ones(4, np.float32)),
                                      Interest("food", "tag", 0.2, np.ones(4, np.float32))])
    page = client.get("/ui/users/c1_u2").text
    assert 'id="interests"' in page and "baking bread · 30%" in page and "food · 20%" in page
