"""The web page's routes: HTML rendered on the server from packaged Jinja2 templates.

``/ui/`` (catalog), ``/ui/videos/{id}``, ``/ui/users/{id}``, the stored JPEGs under
``/ui/thumbs/`` and ``/ui/frames/``, and the CSS/JS under ``/ui/static/``. Nothing is loaded
from the internet; the one script posts interactions to the JSON API.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any, Protocol
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from tagging.errors import InvalidVideoId, MediaNotFound, NotReady, TaggingError, UnknownUser
from tagging.serving.ui import data
from tagging.serving.ui.charts import Bar, bar_chart

logger = logging.getLogger(__name__)

PLACEHOLDER_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 160 90"><rect width="160" height="90" fill="#d9dde3"/>'
                   '<text x="80" y="50" font-family="sans-serif" font-size="12" fill="#5b6470" text-anchor="middle">'
                   'no picture</text></svg>')
EVENTS = ("view", "completion", "like", "share")


class UIService(Protocol):
    """What the pages need of the server's shared state (``tagging.serving.server._Service``).

    Optional callables on the service or its hook, offered with the cold-start loop, add sections:
    ``exposure(video_id)`` (a video's exposure state) and ``interests(user_id)`` (stated interests).
    """

    hook: Any


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("tagging.serving.ui", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["secs"] = lambda v: f"{float(v):.1f} s" if v is not None else ""
    env.filters["pct"] = lambda v: f"{100 * float(v):.0f}%" if v is not None else ""
    return env


def _status(exc: TaggingError) -> int:
    for cls, code in ((InvalidVideoId, 400), (MediaNotFound, 404), (UnknownUser, 404), (NotReady, 503)):
        if isinstance(exc, cls):
            return code
    return 409


def _tag_chart(counts: list[tuple[str, int]], limit: int = 15) -> Any:
    return bar_chart([Bar(t, n, href=f"/ui/?tag={t}") for t, n in counts[:limit]], "videos per tag")


def _review_chart(counts: dict[str, int]) -> Any:
    return bar_chart([Bar(s, n, href=f"/ui/?review={s}", cls=s) for s, n in counts.items()], "videos per review state")


class _Pages:
    """Renders templates; a page built while the models load, or from a refused id, is a message page."""

    def __init__(self, svc: UIService) -> None:
        self.svc = svc
        self.env = _environment()

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=status)

    def page(self, name: str, build: Any, **context: Any) -> HTMLResponse:
        if not self.svc.hook.ready:
            return self.render("message.html", 503, title="Starting", refresh=True,
                               message="The models are still loading; this page reloads by itself.")
        try:
            return self.render(name, **build(), **context)
        except TaggingError as exc:
            return self.render("message.html", _status(exc), title=exc.error_class, message=f"{exc.source}: {exc.reason}")


def _optional(svc: UIService, name: str) -> Any:
    """A callable the service (or its hook) offers only with the cold-start loop, else None."""
    fn = getattr(svc, name, None) or getattr(svc.hook, name, None)
    return fn if callable(fn) else None


def _stage_chart(exposure: dict[str, Any] | None) -> Any:
    """Users shown per exposure stage, and the engagement per impression each decided stage earned."""
    stages = exposure["stages"] if exposure else []
    shown = bar_chart([Bar(f"stage {s.get('stage')}" + (" evidence" if s.get("evidence") else ""),
                           float(s.get("users") or 0)) for s in stages], "users shown per stage")
    rated = [d for d in (exposure["decisions"] if exposure else []) if "rate" in (d.get("metrics") or {})]
    engaged = bar_chart([Bar(f"stage {d.get('stage')}", float(d["metrics"]["rate"]), cls=str(d.get("action") or ""),
                             text=f"{d['metrics']['rate']:.2f} ({d['metrics'].get('engaged_users', 0)}/"
                                  f"{d['metrics'].get('impressions', 0)} engaged) {d.get('action', '')}")
                         for d in rated], "engagement per impression per stage")
    return shown + engaged


def add_ui(app: FastAPI, svc: UIService) -> None:
    """Serve the web page under ``/ui/`` (left out of the OpenAPI schema)."""
    static = resources.files("tagging.serving.ui") / "static"
    app.mount("/ui/static", StaticFiles(directory=str(static)), name="ui-static")

    @app.get("/ui", include_in_schema=False)
    def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    router = APIRouter(prefix="/ui", include_in_schema=False)
    _add_pages(router, _Pages(svc))
    _add_images(router, svc)
    app.include_router(router)


def _add_pages(router: APIRouter, pages: _Pages) -> None:
    hook = pages.svc.hook

    @router.get("/go")
    def go(user: str = Query(..., min_length=1, max_length=256)) -> RedirectResponse:
        return RedirectResponse(f"/ui/users/{quote(user.strip(), safe='')}", status_code=303)

    @router.get("/", response_class=HTMLResponse)
    def catalog(q: str = Query("", max_length=200), tag: str = Query("", max_length=64),
                review: str = Query("", pattern="^(passed|failed|unreviewed)?$"),
                limit: int = Query(24, ge=1, le=200), offset: int = Query(0, ge=0)) -> HTMLResponse:
        def build() -> dict[str, Any]:
            p = data.catalog_page(hook, data.CatalogQuery(q.strip(), tag, review, limit, offset))
            return {"p": p, "tag_chart": _tag_chart(p.tag_counts), "review_chart": _review_chart(p.review_counts)}

        return pages.page("catalog.html", build, title="Catalog")

    @router.get("/videos/{video_id}", response_class=HTMLResponse)
    def video(video_id: str) -> HTMLResponse:
        def build() -> dict[str, Any]:
            v = data.video_view(hook, video_id, _optional(pages.svc, "exposure"))
            tags = bar_chart([Bar(t["name"], t["score"], text=f"{t['score']:.2f}") for t in v["tags"]], "tag scores", 1.0)
            near = v["placement"]["nearest"] if v["placement"] else []
            near_chart = bar_chart([Bar(i, s, text=f"{s:.2f}") for i, s in near], "cosine to nearest warm items", 1.0)
            return {"v": v, "tag_chart": tags, "near_chart": near_chart, "events": EVENTS, "stage_chart": _stage_chart(v["exposure"])}

        return pages.page("video.html", build, title=video_id)

    @router.get("/users/{user_id}", response_class=HTMLResponse)
    def user(user_id: str, new_share: float = Query(0.2, ge=0.0, le=1.0)) -> HTMLResponse:
        def build() -> dict[str, Any]:
            u = data.user_view(hook, user_id, 20, new_share, _optional(pages.svc, "interests"))
            chart = bar_chart([Bar(str(it["id"]), max(float(it["score"]), 0.0), cls=it["source"], text=f"{it['score']:.2f}")
                               for it in u["recs"]], "recommendation scores (warm and new)")
            return {"u": u, "chart": chart}

        return pages.page("user.html", build, title=f"user {user_id}")


def _add_images(router: APIRouter, svc: UIService) -> None:
    def jpeg(video_id: str, index: int | None) -> Response:
        try:
            body = data.image(svc.hook, video_id, index) if svc.hook.ready else None
        except TaggingError:
            body = None
        if body is None:
            return Response(PLACEHOLDER_SVG, media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})
        return Response(body, media_type="image/jpeg", headers={"Cache-Control": "max-age=300"})

    @router.get("/thumbs/{video_id}.jpg")
    def thumb(video_id: str) -> Response:
        return jpeg(video_id, None)

    @router.get("/frames/{video_id}/{index}.jpg")
    def frame(video_id: str, index: int) -> Response:
        return jpeg(video_id, index)
