"""The web page in a real browser: headless Chromium (Debian's package) driven by Playwright.

A real server (the shipped models, a planted CF space, an untrained CB2CF model for the
pipeline's views) ingests three generated clips over HTTP; the browser opens the catalog,
filters it, opens a video, reads its tags and evidence, records an interaction and sees the
placement change, opens a user's recommendations, and screenshots each page (also at phone width).

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; scripts/test.sh does it) and the
``playwright`` package (its driver only: no browser download). Skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import media_factory as mf
import numpy as np
import pytest
from serving_helpers import make_cb2cf, planted_space, served

from cb2cf.audience import AudienceConfig
from tagging.serving.hook import HookConfig, UploadHook
from tagging.serving.server import ServerConfig, create_app

CHROMIUM = os.environ.get("TAGGING_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def text_frames(text: str, n: int, size: tuple[int, int] = (640, 360)) -> list[np.ndarray]:
    """Frames with large dark text on a light background (readable by OCR)."""
    out = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), 235, np.uint8)
        img[:, :, 1] = 200 + i
        cv2.putText(img, text, (20, size[1] // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (10, 10, 10), 4, cv2.LINE_AA)
        out.append(img)
    return out


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium (scripts/test.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(browser, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A served catalog of three clips (OCR text, colours, a tiny one held by review), placed in a planted space."""
    pipeline = request.getfixturevalue("pipeline")  # after the browser check: no model loading just to skip
    from tagging.pipeline import Pipeline, PipelineConfig

    d = tmp_path_factory.mktemp("ui")
    space = planted_space(n_clusters=4, per_cluster=30, dim=8)
    space.save(d / "space")
    ext = {m: e.extractor_id for m, e in pipeline.extractors.items()}
    model = make_cb2cf(d / "cb2cf", pipeline.dims(), seed=3, cf_dim=8, space=space, extractors=ext)
    placed = Pipeline(PipelineConfig(cb2cf_model=str(model)))  # same cached models, plus the CB2CF model
    hook_cfg = HookConfig(db=str(d / "db"), space=str(d / "space"), maintenance_interval_s=None,
                          audience=AudienceConfig(k=12, exploration=0.25, n_clusters=4, near_clusters=1))
    app = create_app(ServerConfig(hook=hook_cfg), hook=UploadHook(hook_cfg, pipeline=placed))
    clips = [
        (mf.make_clip(d / "pasta.mp4", text_frames("PASTA RECIPE", 35), fps=10), "pasta", ""),
        (mf.make_video(d / "colours.mp4", seconds=3.5, size=(640, 360), pattern="colors", audio_kind="noise"),
         "colours", "Colour test"),
        (mf.make_video(d / "tiny.mp4", seconds=1.0, size=(64, 48), with_audio=False), "tiny", "tiny clip"),
    ]
    with served(app, ready_timeout=300) as client:
        for path, vid, caption in clips:
            with open(path, "rb") as fh:
                r = client.post("/videos", files={"file": (path.name, fh, "video/mp4")}, data={"video_id": vid, "caption": caption})
            assert r.status_code == 201, r.text
        yield str(client.base_url).rstrip("/"), client


def _obj(value: object) -> object:
    """A row field that holds JSON, whether the API returns it as a string or as an object."""
    return json.loads(value) if isinstance(value, str) else value


def not_blank(png: Path) -> None:
    """The screenshot has content: many colours and real contrast, not one flat colour."""
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 300, png
    colours = len(np.unique(img.reshape(-1, 3)[::7], axis=0))
    assert colours > 50 and float(img.std()) > 20, (png, colours, float(img.std()))


def test_catalog_video_interaction_and_user_pages(browser, site, tmp_path: Path) -> None:
    base, client = site
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{base}/ui/")
    assert page.locator("#count").inner_text().startswith("3 of 3 videos")
    assert page.locator("a.video").count() == 3
    assert page.locator("svg.chart").count() == 2  # tag distribution and review state, inline SVG
    page.wait_for_load_state("networkidle")
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")  # stored JPEG thumbnails
    page.screenshot(path=tmp_path / "catalog.png", full_page=True)
    not_blank(tmp_path / "catalog.png")

    page.fill("input[name=q]", "pasta")  # search reaches the on-screen text and the caption
    page.click("form.filters button")
    assert page.locator("a.video").count() == 1 and page.locator("a.video").get_attribute("data-video") == "pasta"
    page.click("a.video")
    page.wait_for_url("**/ui/videos/pasta")
    assert page.locator(".frames figure").count() >= 2 and "s" in page.locator(".frames figcaption").first.inner_text()
    tags = page.locator("#tags details.tag")
    assert tags.count() >= 1
    row = client.get("/videos/pasta").json()
    stored = _obj(row["tags_json"])
    assert tags.count() == len(stored) and tags.first.locator("summary b").inner_text() == stored[0]["name"]
    lines = tags.first.locator(".evidence li.ev").all_inner_texts()  # one line per modality with a say
    assert [t.split()[0] for t in lines] == list(stored[0]["evidence"])
    text_ev = [t for t in lines if t.startswith("text")]
    read_at = _obj(row["ocr_json"])[0]["timestamp"]
    assert stored[0]["id"] == "food" and "source: ocr" in text_ev[0] and f"@ {read_at:.1f} s" in text_ev[0]  # read on screen, and when
    assert "PASTA" in page.locator("#text").inner_text().upper().replace("0", "O")  # on-screen text with its time
    assert page.locator("#review .flag").count() >= 5 and "placed" in page.locator(".head").inner_text()
    assert page.locator("#placement table.audience tr").count() == 13  # header + 12 seed users with their reasons
    assert "From content alone" in page.locator("#blend").inner_text()
    page.screenshot(path=tmp_path / "video.png", full_page=True)
    not_blank(tmp_path / "video.png")

    user = page.locator("#placement table.audience td a").first.inner_text()
    page.fill("form.interact input[name=user_id]", user)
    page.select_option("form.interact select[name=event]", "share")
    page.click("form.interact button")
    page.wait_for_function("document.querySelector('#blend').innerText.includes('Warmed up by')")
    assert "1 users interacted" in page.locator("#interaction-count").inner_text() and user in page.locator("#interactions").inner_text()
    assert client.get("/videos/pasta/vector").json()["users"] == 1  # stored through the JSON API

    page.fill("form.interact input[name=user_id]", "")
    page.fill("form.interact input[name=user_id]", "nobody-like-this")
    page.select_option("form.interact select[name=event]", "view")
    page.click("form.interact button")  # a user outside the CF space is refused: the form says why, nothing stored
    page.wait_for_function("document.querySelector('form.interact output').innerText.includes('UnknownUser')")
    assert "'nobody-like-this' is not in the CF space" in page.locator("form.interact output").inner_text()
    assert client.get("/videos/pasta/vector").json()["users"] == 1
    assert "1 users interacted" in page.locator("#interaction-count").inner_text()

    page.goto(f"{base}/ui/users/{user}")
    recs = page.locator("#recs li")
    api = client.get(f"/users/{user}/recommendations").json()["items"]
    assert [li.get_attribute("data-id") for li in recs.all()] == [it["id"] for it in api]
    assert all("why:" in t for t in recs.all_inner_texts())
    # of the 3 new videos only "colours" is left: the user shared "pasta", and "tiny" failed review
    assert page.locator("#recs li.new a[href^='/ui/videos/'] img").count() == sum(it["source"] == "new" for it in api) == 1
    assert {it["id"] for it in api if it["source"] == "new"} == {"colours"}
    assert "pasta" in page.locator("#events").inner_text()  # what the user did
    page.screenshot(path=tmp_path / "user.png", full_page=True)
    not_blank(tmp_path / "user.png")
    page.close()


def test_pages_fit_a_phone_and_errors_are_pages(browser, site, tmp_path: Path) -> None:
    base, _ = site
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    for name, path in (("catalog", "/ui/"), ("video", "/ui/videos/colours"), ("tiny", "/ui/videos/tiny")):
        phone.goto(f"{base}{path}")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)  # no sideways scrolling on a phone
        phone.screenshot(path=tmp_path / f"phone-{name}.png", full_page=True)
        not_blank(tmp_path / f"phone-{name}.png")
    phone.goto(f"{base}/ui/?review=failed")
    assert [a.get_attribute("data-video") for a in phone.locator("a.video").all()] == ["tiny"]  # 64x48: low resolution
    resp = phone.goto(f"{base}/ui/videos/no-such-video")
    assert resp.status == 404 and "not in the catalog" in phone.locator("main").inner_text()
    phone.close()
