"""What the HTTP routes share: the settings (:class:`ServerConfig`), the hook, metrics and start-up state.

Also the mapping of typed errors to HTTP statuses (:func:`status_of`), the confinement of
server-side paths (:func:`confine`) and :func:`clip`, which shortens user input before it
reaches a log line or an error answer.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse

from tagging.errors import (
    CatalogError,
    InvalidInteraction,
    InvalidVideoId,
    LimitExceeded,
    MediaError,
    MediaNotFound,
    NotReady,
    PathNotAllowed,
    TaggingError,
    UnknownUser,
)
from tagging.serving.hook import HookConfig, UploadHook

logger = logging.getLogger(__name__)

MAX_ECHO = 300
"""Longest piece of user input echoed in a log line or an error answer (the rest is elided)."""


def clip(text: object, limit: int = MAX_ECHO) -> str:
    """``str(text)`` cut to ``limit`` characters, with the number of characters left out."""
    s = str(text)
    return s if len(s) <= limit else f"{s[:limit]}...[{len(s) - limit} more characters]"


@dataclass
class ServerConfig:
    """HTTP service settings.

    Attributes:
        hook: Hook settings (catalog, pipeline, decode limits, CF space).
        roots: Directories ``POST /videos/by-path`` may read from (none: the endpoint is refused).
        max_upload_bytes: Largest accepted request body of an upload (``POST /videos``).
        max_body_bytes: Largest accepted request body of every other endpoint (JSON bodies).
        body_timeout_s: Longest wait for the next chunk of a request body (408 after it).
        upload_dir: Where uploads are stored (default: a temporary directory).
        api_token: When set, requests (other than health probes and the API docs) must carry
            ``Authorization: Bearer <api_token>``.
    """

    hook: HookConfig = field(default_factory=HookConfig)
    roots: list[str] = field(default_factory=list)
    max_upload_bytes: int = 256 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    body_timeout_s: float = 30.0
    upload_dir: str | None = None
    api_token: str | None = None


OPEN_PATHS = ("/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json")
"""Endpoints that answer without the API token: the health probes and the API description
(``/docs`` then asks for the token with its *Authorize* button)."""
DOCS_ASSETS = "/docs/assets/"
"""Where the Swagger UI files are served from (no CDN)."""


def is_open(path: str) -> bool:
    """Whether ``path`` answers without the API token."""
    return path in OPEN_PATHS or path.startswith(DOCS_ASSETS)


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
        raise PathNotAllowed(clip(path), "reading server paths is disabled (no --root configured)")
    if "\x00" in path:
        raise PathNotAllowed(clip(repr(path)), "path contains a NUL byte")
    p = Path(path)
    try:
        real = (p if p.is_absolute() else Path(roots[0]) / p).resolve()
    except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop
        raise PathNotAllowed(clip(path), f"path cannot be resolved ({type(exc).__name__})") from None
    for r in roots:
        if real.is_relative_to(Path(r).resolve()):
            return real
    raise PathNotAllowed(clip(path), "path is outside the allowed roots")


@dataclass
class Service:
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
        body = {"error": cls, "detail": clip(detail, 4 * MAX_ECHO), "source": None if source is None else clip(source)}
        return JSONResponse(body, status_code=status)

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


def build_service(cfg: ServerConfig, hook: UploadHook) -> Service:
    """The shared state of one app: metrics in their own registry and the upload folder."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry()
    upload_dir = Path(cfg.upload_dir or tempfile.mkdtemp(prefix="tagging-uploads-"))
    upload_dir.mkdir(parents=True, exist_ok=True)
    return Service(
        cfg, hook, registry,
        Counter("tagging_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry),
        Histogram("tagging_http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry,
                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)),
        Counter("tagging_failures_total", "Failed requests by error class", ["error_class"], registry=registry),
        Gauge("tagging_ready", "1 when models are loaded", registry=registry),
        upload_dir,
    )
