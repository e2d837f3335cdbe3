"""The HTTP service: FastAPI over :class:`~tagging.serving.hook.UploadHook`.

Endpoints (OpenAPI at ``/openapi.json``, interactive docs at ``/docs``):

* ``POST /videos`` - multipart upload (``file``, optional ``video_id``, ``caption``, ``metadata`` JSON);
* ``POST /videos/by-path`` - JSON ``{"path", ...}`` of a file under a configured root;
* ``GET /videos/{id}`` - the row (``?vectors=true`` adds the feature vectors);
* ``GET /videos/{id}/audience`` - seed audience (``k``, ``exploration``);
* ``GET /videos/{id}/vector`` - current CF vector (prior, blend);
* ``POST /videos/{id}/interactions`` - record events, returns the warmed-up vector;
* ``GET /users/{id}/recommendations`` - warm items mixed with new videos (``k``, ``new_share``);
* ``GET /healthz``, ``GET /readyz`` (models loaded), ``GET /metrics`` (Prometheus).

With an API token configured, every endpoint but ``/healthz`` and ``/readyz`` needs
``Authorization: Bearer <token>`` (401 otherwise).

Errors are JSON ``{"error": <class>, "detail": <reason>, "source": ...}`` with 400 (bad id
or event), 401 (missing or wrong API token), 403 (path outside the roots), 404, 411/413 (upload size), 422 (bad media or
malformed body), 503 (models still loading).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from tagging.errors import (
    CatalogError,
    InvalidVideoId,
    LimitExceeded,
    MediaError,
    MediaNotFound,
    NotReady,
    PathNotAllowed,
    TaggingError,
)
from tagging.serving.hook import HookConfig, UnknownUser, UploadHook
from tagging.serving.routes_loop import add_loop_routes
from tagging.store.catalog import jsonable_row
from tagging.store.interactions import InvalidInteraction

logger = logging.getLogger(__name__)


@dataclass
class ServerConfig:
    """HTTP service settings.

    Attributes:
        hook: Hook settings (catalog, pipeline, decode limits, CF space).
        roots: Directories ``POST /videos/by-path`` may read from (none: the endpoint is refused).
        max_upload_bytes: Largest accepted request body of an upload.
        upload_dir: Where uploads are stored (default: a temporary directory).
        api_token: When set, requests (other than health probes) must carry
            ``Authorization: Bearer <api_token>``.
    """

    hook: HookConfig = field(default_factory=HookConfig)
    roots: list[str] = field(default_factory=list)
    max_upload_bytes: int = 256 * 1024 * 1024
    upload_dir: str | None = None
    api_token: str | None = None


OPEN_PATHS = ("/healthz", "/readyz")
"""Endpoints that answer without the API token (load-balancer probes)."""


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


_STATUS = [(InvalidVideoId, 400), (InvalidInteraction, 400), (PathNotAllowed, 403), (MediaNotFound, 404), (UnknownUser, 404),
           (LimitExceeded, 413), (MediaError, 422), (NotReady, 503), (CatalogError, 500), (TaggingError, 409)]


def status_of(exc: TaggingError) -> int:
    """HTTP status of a typed error."""
    return next(code for cls, code in _STATUS if isinstance(exc, cls))


def confine(path: str, roots: list[str]) -> Path:
    """Resolve ``path`` (symlinks followed) and require it under one of ``roots``.

    Relative paths are taken relative to the first root.

    Raises:
        PathNotAllowed: No roots, a NUL byte, or the real path is outside every root.
    """
    if not roots:
        raise PathNotAllowed(path, "reading server paths is disabled (no --root configured)")
    if "\x00" in path:
        raise PathNotAllowed(repr(path), "path contains a NUL byte")
    p = Path(path)
    real = (p if p.is_absolute() else Path(roots[0]) / p).resolve()
    for r in roots:
        if real.is_relative_to(Path(r).resolve()):
            return real
    raise PathNotAllowed(path, "path is outside the allowed roots")


@dataclass
class _Service:
    """What the routes share: settings, the hook, metrics and the start-up state."""

    cfg: ServerConfig
    hook: UploadHook
    registry: Any
    m_requests: Any
    m_latency: Any
    m_failures: Any
    m_ready: Any
    upload_dir: Path
    state: dict[str, Any] = field(default_factory=lambda: {"error": None})

    @property
    def expected_auth(self) -> bytes | None:
        """The ``Authorization`` header value required, or None without a token."""
        return f"Bearer {self.cfg.api_token}".encode() if self.cfg.api_token else None

    def error(self, status: int, cls: str, detail: str, source: str | None = None) -> JSONResponse:
        """The documented JSON error, counted in ``tagging_failures_total``."""
        self.m_failures.labels(cls).inc()
        return JSONResponse({"error": cls, "detail": detail, "source": source}, status_code=status)

    def require_ready(self) -> None:
        """Raise :class:`NotReady` until the models are loaded.

        Raises:
            NotReady: Still loading, or start-up failed.
        """
        if not self.hook.ready:
            raise NotReady("service", self.state["error"] or "models are still loading; retry when /readyz is 200")

    def load(self) -> None:
        """Load the models (run in a background thread at start-up); a failure is reported by ``/readyz``."""
        try:
            secs = self.hook.start()
            self.m_ready.set(1)
            logger.info("models loaded in %.1f s", secs)
        except Exception as exc:  # noqa: BLE001 - reported by /readyz
            self.state["error"] = f"{type(exc).__name__}: {exc}"
            logger.error("start-up failed: %s", self.state["error"])


def _service(cfg: ServerConfig, hook: UploadHook) -> _Service:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry()
    upload_dir = Path(cfg.upload_dir or tempfile.mkdtemp(prefix="tagging-uploads-"))
    upload_dir.mkdir(parents=True, exist_ok=True)
    return _Service(
        cfg, hook, registry,
        Counter("tagging_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry),
        Histogram("tagging_http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry,
                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)),
        Counter("tagging_failures_total", "Failed requests by error class", ["error_class"], registry=registry),
        Gauge("tagging_ready", "1 when models are loaded", registry=registry),
        upload_dir,
    )


def create_app(config: ServerConfig | None = None, hook: UploadHook | None = None) -> Any:
    """Build the FastAPI app.

    Args:
        config: Service settings.
        hook: A hook to serve (e.g. sharing a loaded pipeline); built from ``config.hook`` when None.
            Its models load in a background thread at start-up; ``/readyz`` says when.

    Returns:
        The ``FastAPI`` application.
    """
    from contextlib import asynccontextmanager

    cfg = config or ServerConfig()
    svc = _service(cfg, hook or UploadHook(cfg.hook))

    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        threading.Thread(target=svc.load, name="tagging-load", daemon=True).start()
        yield
        svc.hook.close()

    app = FastAPI(title="tagging", version="0.1.0", lifespan=lifespan,
                  description="Tag newly uploaded videos and place them in the CF recommender from content alone.")
    _add_error_handlers(app, svc)
    _add_middleware(app, svc)
    _add_ops_routes(app, svc)
    _add_video_routes(app, svc)
    _add_coldstart_routes(app, svc)
    add_loop_routes(app, svc)
    return app


def _add_error_handlers(app: FastAPI, svc: _Service) -> None:
    @app.exception_handler(TaggingError)
    async def _tagging_error(_: Request, exc: TaggingError) -> JSONResponse:
        return svc.error(status_of(exc), exc.error_class, exc.reason, exc.source)

    @app.exception_handler(ValueError)
    async def _value_error(_: Request, exc: ValueError) -> JSONResponse:
        return svc.error(422, "ValueError", str(exc))


def _add_middleware(app: FastAPI, svc: _Service) -> None:
    """Auth (bearer token), the upload size check and request metrics."""

    @app.middleware("http")
    async def _metrics_and_limits(request: Request, call_next: Any) -> Any:
        t0 = time.perf_counter()
        if svc.expected_auth is not None and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, svc.expected_auth):
                resp = svc.error(401, "Unauthorized", "missing or wrong API token (Authorization: Bearer <token>)")
                resp.headers["WWW-Authenticate"] = "Bearer"
                svc.m_requests.labels(request.method, "unauthorized", "401").inc()
                return resp
        if request.method == "POST" and request.url.path == "/videos":
            length = request.headers.get("content-length")
            if length is None:
                resp = svc.error(411, "LengthRequired", "uploads need a Content-Length header")
            elif not length.isdigit() or int(length) > svc.cfg.max_upload_bytes:
                resp = svc.error(413, "UploadTooLarge", f"upload is larger than {svc.cfg.max_upload_bytes} bytes")
            else:
                resp = None
            if resp is not None:
                svc.m_requests.labels(request.method, "/videos", str(resp.status_code)).inc()
                return resp
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        svc.m_requests.labels(request.method, route, str(response.status_code)).inc()
        svc.m_latency.labels(request.method, route).observe(time.perf_counter() - t0)
        if response.status_code == 422 and route != "unmatched":
            svc.m_failures.labels("RequestValidationError").inc()
        return response


def _add_ops_routes(app: FastAPI, svc: _Service) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> Response:
        """Readiness: models loaded, decode workers and writer started."""
        body = {"ready": svc.hook.ready, "error": svc.state["error"]}
        return JSONResponse(body, status_code=200 if svc.hook.ready else 503)

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(svc.registry), media_type=CONTENT_TYPE_LATEST)


def _add_video_routes(app: FastAPI, svc: _Service) -> None:
    @app.post("/videos", status_code=201, tags=["videos"])
    def upload(file: UploadFile = File(...), video_id: str | None = Form(None), caption: str | None = Form(None),
               metadata: str | None = Form(None, description="JSON object")) -> dict[str, Any]:
        """Upload a video; returns its row (tags, review, CF vector, audience)."""
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
                raise MediaError(file.filename or "upload", "uploaded file is empty")
            return svc.hook(dest, video_id, caption, meta, source_uri=f"upload://{name}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @app.post("/videos/by-path", status_code=201, tags=["videos"])
    def by_path(body: ByPath = Body(...)) -> dict[str, Any]:
        """Ingest a file the server may read (confined to the configured roots)."""
        svc.require_ready()
        return svc.hook(confine(body.path, svc.cfg.roots), body.video_id, body.caption, body.metadata)

    @app.get("/videos/{video_id}", tags=["videos"])
    def get_video(video_id: str, vectors: bool = False) -> dict[str, Any]:
        """A video's catalog row."""
        svc.require_ready()
        row = svc.hook.get(video_id)
        if row is None:
            raise MediaNotFound(video_id, "video is not in the catalog")
        return jsonable_row(row, vectors=vectors)


def _add_coldstart_routes(app: FastAPI, svc: _Service) -> None:
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


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the app under uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level)


__all__ = ["NotReady", "PathNotAllowed", "ServerConfig", "confine", "create_app", "serve", "status_of"]
