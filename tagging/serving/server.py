"""The HTTP service: FastAPI over :class:`~tagging.serving.hook.UploadHook`.

Endpoints (OpenAPI at ``/openapi.json``, interactive docs at ``/docs``, served without any CDN):

* ``POST /videos`` - multipart upload (``file``, optional ``video_id``, ``caption``, ``metadata`` JSON);
* ``POST /videos/by-path`` - JSON ``{"path", ...}`` of a file under a configured root;
* ``GET /videos`` - the catalog, filtered (``tag``, ``review``) and paged (``limit``, ``offset``);
* ``GET /videos/{id}`` - the row (``?vectors=true`` adds the feature vectors);
* ``GET /videos/{id}/similar`` - nearest videos by content (``space=content``) or CF placement (``space=cf``);
* ``DELETE /videos/{id}`` - take a video down: its row and its interactions;
* ``GET /videos/{id}/audience`` - seed audience (``k``, ``exploration``);
* ``GET /videos/{id}/vector`` - current CF vector (prior, blend);
* ``POST /videos/{id}/interactions`` - record events, returns the warmed-up vector;
* ``GET /users/{id}/recommendations`` - warm items mixed with new videos (``k``, ``new_share``);
* ``GET /healthz``, ``GET /readyz`` (models loaded), ``GET /metrics`` (Prometheus).

With an API token configured, every endpoint but ``/healthz``, ``/readyz`` and the API docs
needs ``Authorization: Bearer <token>`` (401 otherwise).

Errors are JSON ``{"error": <class>, "detail": <reason>, "source": ...}`` with 400 (bad id
or event), 401 (missing or wrong API token), 403 (path outside the roots), 404, 408 (body too
slow), 411/413 (body size), 422 (bad media or malformed body), 500 (a bug: ``InternalError``),
503 (models still loading).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from tagging.errors import LimitExceeded, MediaError, MediaNotFound, NotReady, PathNotAllowed
from tagging.serving.catalog_routes import add_catalog_routes
from tagging.serving.hook import UploadHook
from tagging.serving.middleware import add_error_handlers, add_middleware
from tagging.serving.routes_loop import add_loop_routes
from tagging.serving.service import DOCS_ASSETS, ServerConfig, Service, build_service, confine, status_of
from tagging.serving.ui import add_ui
from tagging.store.catalog import jsonable_row

logger = logging.getLogger(__name__)


class ByPath(BaseModel):
    """A file the server may read."""

    path: str = Field(..., description="File path under a configured root")
    video_id: str | None = None
    caption: str | dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Event(BaseModel):
    """One interaction; ``weight`` defaults to the event kind's weight."""

    user_id: str = Field(..., min_length=1, max_length=256)
    event: str = Field(..., description="view, completion, like or share")
    weight: float | None = Field(None, gt=0)


class Events(BaseModel):
    """A batch of interactions for one video."""

    events: list[Event] = Field(..., min_length=1, max_length=10000)


def create_app(config: ServerConfig | None = None, hook: UploadHook | None = None) -> Any:
    """Build the FastAPI app.

    Args:
        config: Service settings.
        hook: A hook to serve (e.g. sharing a loaded pipeline); built from ``config.hook`` when None.
            Its models load in a background thread at start-up; ``/readyz`` says when.

    Returns:
        The ``FastAPI`` application. ``app.state.on_fatal`` (None) may be set to a callable that
        stops the server when the models fail to load.
    """
    from contextlib import asynccontextmanager

    cfg = config or ServerConfig()
    svc = build_service(cfg, hook or UploadHook(cfg.hook))

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        def load() -> None:
            svc.load()
            if svc.state["error"] and app.state.on_fatal is not None:
                app.state.on_fatal(svc.state["error"])

        threading.Thread(target=load, name="tagging-load", daemon=True).start()
        yield
        svc.hook.close()

    app = FastAPI(title="tagging", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Tag newly uploaded videos and place them in the CF recommender from content alone.")
    app.state.on_fatal = None
    app.state.service = svc
    add_error_handlers(app, svc)
    add_middleware(app, svc)
    _add_ops_routes(app, svc)
    _add_docs(app, svc)
    _add_video_routes(app, svc)
    add_catalog_routes(app, svc)
    _add_coldstart_routes(app, svc)
    add_ui(app, svc)  # the web page at /ui/ (tagging/serving/ui)
    add_loop_routes(app, svc)
    return app


def _add_ops_routes(app: FastAPI, svc: Service) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    @app.get("/healthz", tags=["ops"])
    def healthz() -> Response:
        """Liveness: the process answers (503 once start-up has failed: the process should be restarted)."""
        if svc.state["error"]:
            return JSONResponse({"status": "failed", "error": svc.state["error"]}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", tags=["ops"])
    def readyz() -> Response:
        """Readiness: models loaded, decode workers and writer started."""
        body = {"ready": svc.hook.ready, "error": svc.state["error"]}
        return JSONResponse(body, status_code=200 if svc.hook.ready else 503)

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(svc.registry), media_type=CONTENT_TYPE_LATEST)


def _add_docs(app: FastAPI, svc: Service) -> None:
    """``/docs`` from the Swagger UI files of the ``swagger-ui-bundle`` package, and the bearer scheme."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.openapi.utils import get_openapi
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS.rstrip("/"), StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="tagging - API",
                                   swagger_js_url=f"{DOCS_ASSETS}swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}favicon-32x32.png")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            if svc.cfg.api_token:  # Swagger's "Authorize" button then sends the token with every try-out
                schema.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
                schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_video_routes(app: FastAPI, svc: Service) -> None:
    @app.post("/videos", status_code=201, tags=["videos"])
    def upload(file: UploadFile = File(...), video_id: str | None = Form(None), caption: str | None = Form(None),
               metadata: str | None = Form(None, description="JSON object"), vectors: bool = False) -> dict[str, Any]:
        """Upload a video; returns its row (tags, review, CF vector, audience) as ``GET /videos/{id}`` does."""
        svc.require_ready()
        meta = _json_object(metadata)
        # Keep the client's file name (sanitised) so the default id is name + content hash:
        # the same upload twice gets the same id.
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(file.filename or "upload.mp4").name).strip("-.")[:120] or "upload.mp4"
        folder = Path(tempfile.mkdtemp(dir=svc.upload_dir))
        dest = folder / name
        try:
            with open(dest, "wb") as out:
                n = _copy_limited(file.file, out, svc.cfg.max_upload_bytes)
            if n == 0:
                raise MediaError(f"upload://{name}", "uploaded file is empty")
            return svc.hook(dest, video_id, caption, meta, source_uri=f"upload://{name}", vectors=vectors)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @app.post("/videos/by-path", status_code=201, tags=["videos"])
    def by_path(body: ByPath = Body(...), vectors: bool = False) -> dict[str, Any]:
        """Ingest a file the server may read (confined to the configured roots)."""
        svc.require_ready()
        return svc.hook(confine(body.path, svc.cfg.roots), body.video_id, body.caption, body.metadata, vectors=vectors)

    @app.get("/videos/{video_id}", tags=["videos"])
    def get_video(video_id: str, vectors: bool = False) -> dict[str, Any]:
        """A video's catalog row."""
        svc.require_ready()
        row = svc.hook.get(video_id)
        if row is None:
            raise MediaNotFound(video_id, "video is not in the catalog")
        return jsonable_row(row, vectors=vectors)


def _add_coldstart_routes(app: FastAPI, svc: Service) -> None:
    @app.get("/videos/{video_id}/audience", tags=["cold start"])
    def audience(video_id: str, k: int | None = Query(None, ge=1, le=100000),
                 exploration: float | None = Query(None, ge=0.0, le=1.0)) -> dict[str, Any]:
        """Seed audience: top users by score plus an exploration share from other interest clusters."""
        svc.require_ready()
        return svc.hook.audience(video_id, k, exploration)

    @app.get("/videos/{video_id}/vector", tags=["cold start"])
    def vector(video_id: str) -> dict[str, Any]:
        """The item's current CF vector: CB2CF prior folded in with its interactions."""
        svc.require_ready()
        return svc.hook.item_vector(video_id)

    @app.get("/users/{user_id}/recommendations", tags=["cold start"])
    def recommendations(user_id: str, k: int = Query(20, ge=1, le=1000),
                        new_share: float = Query(0.2, ge=0.0, le=1.0),
                        max_tag_share: float = Query(0.5, gt=0.0, le=1.0)) -> dict[str, Any]:
        """Warm items mixed with new videos (current vectors; ``new_share`` of the slots reserved), stated
        interests, at most ``max_tag_share`` of the list per tag; nothing already seen or failed review."""
        svc.require_ready()
        return svc.hook.recommend(user_id, k, new_share, max_tag_share)

    @app.post("/videos/{video_id}/interactions", tags=["cold start"])
    def interactions(video_id: str, body: Events) -> dict[str, Any]:
        """Record interactions; returns the warmed-up vector and its blend factor."""
        svc.require_ready()
        return svc.hook.record_interactions(video_id, [e.model_dump() for e in body.events])


def _json_object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"metadata is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("metadata must be a JSON object")
    return value


def _copy_limited(src: Any, dst: Any, limit: int) -> int:
    n = 0
    while chunk := src.read(1 << 20):
        n += len(chunk)
        if n > limit:
            raise LimitExceeded("upload", f"upload is larger than {limit} bytes")
        dst.write(chunk)
    return n


def preflight(hook: UploadHook) -> None:
    """Check what the configuration names before the server binds: the CF space (loaded when the
    hook was built), the taxonomy, the tag head and the CB2CF model (its views and its space).

    The model weights still load in the background after binding (``/readyz`` says when).

    Raises:
        TaggingError: A file is missing or does not fit (``ModelLoadError``, ``TaxonomyError``, ...).
    """
    from tagging import coldstart

    pipeline = hook.pipeline  # taxonomy and tag head are read here
    model = getattr(pipeline, "cb2cf", None)
    if model is not None and hook.space is not None:
        coldstart.check_model_space(model, hook.space, str(pipeline.config.cb2cf_model))


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises:
        OSError: The address is taken or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # from now on clients queue instead of being refused while uvicorn starts
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
          hook: UploadHook | None = None) -> None:
    """Check the configuration, bind, say where, and run the app under uvicorn until interrupted.

    Raises:
        TaggingError: Bad configuration (before binding), see :func:`preflight`.
        OSError: The address cannot be bound.
        NotReady: The models failed to load after start-up (the server stopped).
    """
    import uvicorn

    hook = hook or UploadHook(config.hook)
    preflight(hook)
    app = create_app(config, hook)
    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level))
    failure: list[str] = []

    def on_fatal(error: str) -> None:
        failure.append(error)
        server.should_exit = True

    app.state.on_fatal = on_fatal
    shown = f"[{host}]" if ":" in host else host
    print(f"tagging serve: listening on http://{shown}:{sock.getsockname()[1]} (API docs at /docs; "
          "ready when /readyz answers 200)", flush=True)
    server.run(sockets=[sock])
    if failure:
        raise NotReady("service", f"start-up failed: {failure[0]}")


__all__ = ["NotReady", "PathNotAllowed", "ServerConfig", "confine", "create_app", "preflight", "serve", "status_of"]
