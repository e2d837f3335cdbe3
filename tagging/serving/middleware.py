"""Error answers and the request guard of the HTTP service.

Every error, whatever raised it, is the documented JSON ``{"error", "detail", "source"}``:
typed errors get their status from :func:`~tagging.serving.service.status_of`, FastAPI's
own validation errors (422) and Starlette's (404 unknown route, 405, ...) are reshaped, and
anything unexpected is a 500 ``InternalError`` whose log line is cut short.

:class:`Guard` is a pure ASGI middleware, outside the routes and inside Starlette's own error
middleware, so it sees every answer (500s included) for the metrics. It checks the bearer
token, caps every request body (``max_upload_bytes`` for ``POST /videos``, ``max_body_bytes``
for the rest: a declared ``Content-Length`` over the cap is refused before anything is read,
a chunked body is counted as it arrives) and gives up on a client that stops sending its body
for ``body_timeout_s`` (408).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tagging.errors import TaggingError
from tagging.serving.service import MAX_ECHO, Service, clip, is_open, status_of

logger = logging.getLogger(__name__)

BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def add_error_handlers(app: FastAPI, svc: Service) -> None:
    """Typed errors, ``ValueError``, validation errors and Starlette's HTTP errors as the documented JSON."""

    @app.exception_handler(TaggingError)
    async def _tagging_error(_: Request, exc: TaggingError) -> JSONResponse:
        return svc.error(status_of(exc), exc.error_class, exc.reason, exc.source)

    @app.exception_handler(ValueError)
    async def _value_error(_: Request, exc: ValueError) -> JSONResponse:
        return svc.error(422, "ValueError", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        parts = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in errors[:5]]
        first = ".".join(map(str, errors[0].get("loc", ()))) if errors else None
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        return svc.error(422, "RequestValidationError", "; ".join(parts) + more, first)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {404: "NotFound", 405: "MethodNotAllowed", 408: "RequestTimeout", 411: "LengthRequired",
                 413: "RequestTooLarge"}
        resp = svc.error(exc.status_code, names.get(exc.status_code, "HTTPError"), str(exc.detail))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v
    return None


class Guard:
    """Auth, body caps, the body read timeout, request metrics and the last-resort 500.

    Args:
        app: The ASGI app inside.
        svc: The service (settings and metrics).
    """

    def __init__(self, app: Any, svc: Service) -> None:
        self.app, self.svc = app, svc

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        started: dict[str, int] = {}

        async def send_counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started["status"] = int(message["status"])
            await send(message)

        refusal, label = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_counted)
        else:
            label = None
            try:
                await self.app(scope, self._capped(scope, receive), send_counted)
            except Exception as exc:  # noqa: BLE001 - the last resort: still a JSON answer, still counted
                if "status" in started:
                    raise  # the answer is on its way; nothing else can be sent
                self._log_crash(scope, exc)
                await self.svc.error(500, "InternalError", f"internal error ({type(exc).__name__}); the server log has "
                                     "the details")(scope, receive, send_counted)
        route = label or getattr(scope.get("route"), "path", "unmatched")
        self.svc.m_requests.labels(scope["method"], route, str(started.get("status", 500))).inc()
        self.svc.m_latency.labels(scope["method"], route).observe(time.perf_counter() - t0)

    def _refusal(self, scope: dict[str, Any]) -> tuple[JSONResponse | None, str | None]:
        """An answer given before the app runs (no token, body declared too large or without a length)."""
        svc, path, method = self.svc, scope["path"], scope["method"]
        if svc.expected_auth is not None and not is_open(path):
            given = _header(scope, b"authorization") or b""
            if not hmac.compare_digest(given, svc.expected_auth):
                resp = svc.error(401, "Unauthorized", "missing or wrong API token (Authorization: Bearer <token>)")
                resp.headers["WWW-Authenticate"] = "Bearer"
                return resp, "unauthorized"
        if method not in BODY_METHODS:
            return None, None
        limit = self._limit(scope)
        length = _header(scope, b"content-length")
        if length is None and method == "POST" and path == "/videos":
            return svc.error(411, "LengthRequired", "uploads need a Content-Length header"), path
        if length is not None and (not length.isdigit() or int(length) > limit):
            what = "upload" if path == "/videos" else "request body"
            return svc.error(413, "RequestTooLarge", f"{what} is larger than {limit} bytes"), path
        return None, None

    def _limit(self, scope: dict[str, Any]) -> int:
        cfg = self.svc.cfg
        return cfg.max_upload_bytes if scope["method"] == "POST" and scope["path"] == "/videos" else cfg.max_body_bytes

    def _capped(self, scope: dict[str, Any], receive: Any) -> Any:
        """``receive`` that counts the body against the cap and waits at most ``body_timeout_s`` per chunk."""
        if scope["method"] not in BODY_METHODS:
            return receive
        limit, timeout = self._limit(scope), self.svc.cfg.body_timeout_s
        seen = {"bytes": 0, "done": False}

        async def capped() -> dict[str, Any]:
            if seen["done"]:
                return await receive()  # after the body: only the disconnect is left to wait for
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except asyncio.TimeoutError:
                raise StarletteHTTPException(408, f"no request body data for {timeout:g} s") from None
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > limit:
                    raise StarletteHTTPException(413, f"request body is larger than {limit} bytes")
                seen["done"] = not message.get("more_body", False)
            return message

        return capped

    @staticmethod
    def _log_crash(scope: dict[str, Any], exc: Exception) -> None:
        """One error log entry, every line of the traceback cut to :data:`MAX_ECHO` characters."""
        lines = "".join(traceback.format_exception(exc)).splitlines()
        logger.error("unhandled error on %s %s:\n%s", scope["method"], clip(scope["path"]),
                     "\n".join(clip(line, MAX_ECHO) for line in lines[-40:]))


def add_middleware(app: FastAPI, svc: Service) -> None:
    """Install :class:`Guard` around the routes."""
    app.add_middleware(Guard, svc=svc)
