"""Remote sources for the backfill: ``http://`` and ``https://`` URIs.

A catalog manifest may list videos by URL. Each one is streamed to a temporary file
(with a size cap and a timeout), decoded like a local file, and deleted; the row keeps
the URL as its ``source_uri``. Without an explicit ``video_id`` the id comes from the
URL itself (file name plus a hash of the URL), so planning a resumable run never has to
download anything.

Only the backfill fetches: the HTTP service's ``/videos/by-path`` stays confined to local
roots (a server that fetches arbitrary URLs for its callers is an SSRF hole).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from tagging.errors import LimitExceeded, MediaError, MediaNotFound
from tagging.inputs import id_stem

logger = logging.getLogger(__name__)

REMOTE_SCHEMES = ("http", "https")
CHUNK = 1 << 20


def is_remote(uri: str) -> bool:
    """True for ``http://`` and ``https://`` URIs."""
    return urlparse(str(uri)).scheme.lower() in REMOTE_SCHEMES


def url_video_id(uri: str) -> str:
    """A stable id for a URL: its file name (slugged) plus a hash of the whole URL."""
    return f"{id_stem(PurePosixPath(unquote(urlparse(uri).path)).stem)}-{hashlib.sha1(uri.encode()).hexdigest()[:10]}"


@contextmanager
def fetched(uri: str, max_bytes: int = 2 * 1024**3, timeout_s: float = 60.0) -> Iterator[Path]:
    """Download ``uri`` to a temporary file, yield its path, delete it afterwards.

    Args:
        uri: An ``http(s)://`` URL.
        max_bytes: Largest accepted body (checked on Content-Length and while streaming).
        timeout_s: Socket timeout of the connection and of each read.

    Yields:
        The local file (named like the URL's file, so its extension is kept).

    Raises:
        MediaNotFound: HTTP 404 or 410.
        LimitExceeded: The body is larger than ``max_bytes``.
        MediaError: Any other HTTP status, a network error or a timeout.
    """
    tmp = Path(tempfile.mkdtemp(prefix="tagging-fetch-"))
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", PurePosixPath(unquote(urlparse(uri).path)).name)
    dest = tmp / (name.lstrip(".")[-120:] or "video")  # never "", "." or ".."
    try:
        _download(uri, dest, max_bytes, timeout_s)
        yield dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only (never ftp:// or file://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]  # noqa: ANN001
        if urlparse(newurl).scheme.lower() not in REMOTE_SCHEMES:
            raise MediaError(req.full_url, f"redirect to a non-http(s) URL refused: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _download(uri: str, dest: Path, max_bytes: int, timeout_s: float) -> None:
    req = urllib.request.Request(uri, headers={"User-Agent": "tagging-backfill"})
    try:
        with _OPENER.open(req, timeout=timeout_s) as resp, open(dest, "wb") as out:
            length = resp.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise LimitExceeded(uri, f"remote file is {expected} bytes, over the {max_bytes}-byte limit")
            total = 0
            while chunk := resp.read(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise LimitExceeded(uri, f"remote file is over the {max_bytes}-byte limit")
                out.write(chunk)
            if expected is not None and total != expected:  # a dropped connection reads as a short body
                raise MediaError(uri, f"download truncated: {total} of {expected} bytes")
    except MediaError:
        raise
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            raise MediaNotFound(uri, f"HTTP {exc.code} {exc.reason}") from None
        raise MediaError(uri, f"cannot fetch: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
        raise MediaError(uri, f"cannot fetch: {getattr(exc, 'reason', exc)}") from None
    except Exception as exc:  # noqa: BLE001 - bad status lines, broken chunking, local I/O: one typed error
        raise MediaError(uri, f"cannot fetch: {type(exc).__name__}: {exc}") from None
    logger.debug("fetched %s (%d bytes) to %s", uri, os.path.getsize(dest), dest)
