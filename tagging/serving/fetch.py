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

logger = logging.getLogger("tagging.serving")

REMOTE_SCHEMES = ("http", "https")
CHUNK = 1 << 20


def is_remote(uri: str) -> bool:
    """True for ``http://`` and ``https://`` URIs."""
    return urlparse(str(uri)).scheme.lower() in REMOTE_SCHEMES


def url_video_id(uri: str) -> str:
    """A stable id for a URL: its file name (slugged) plus a hash of the whole URL."""
    name = PurePosixPath(unquote(urlparse(uri).path)).stem
    stem = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9_.-]+", "-", name)).strip("-._")[:80].strip("-._") or "video"
    return f"{stem}-{hashlib.sha1(uri.encode()).hexdigest()[:10]}"


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
    name = PurePosixPath(unquote(urlparse(uri).path)).name or "video"
    dest = tmp / re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[-120:]
    try:
        _download(uri, dest, max_bytes, timeout_s)
        yield dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(uri: str, dest: Path, max_bytes: int, timeout_s: float) -> None:
    req = urllib.request.Request(uri, headers={"User-Agent": "tagging-backfill"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp, open(dest, "wb") as out:  # noqa: S310 - http(s) only
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise LimitExceeded(uri, f"remote file is {int(length)} bytes, over the {max_bytes}-byte limit")
            total = 0
            while chunk := resp.read(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise LimitExceeded(uri, f"remote file is over the {max_bytes}-byte limit")
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            raise MediaNotFound(uri, f"HTTP {exc.code} {exc.reason}") from None
        raise MediaError(uri, f"cannot fetch: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MediaError(uri, f"cannot fetch: {reason}") from None
    logger.debug("fetched %s (%d bytes) to %s", uri, os.path.getsize(dest), dest)
