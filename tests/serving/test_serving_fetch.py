"""Fetching http(s) backfill sources: typed errors for every way a download goes wrong, nothing left behind."""

from __future__ import annotations

import http.server
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagging.cli.serve import api_token
from tagging.errors import LimitExceeded, MediaError, MediaNotFound
from tagging.serving.backfill.fetch import fetched, is_remote, url_video_id

BODY = b"x" * 5000


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path in ("/ok.mp4", "/a/%2e%2e", "/a/"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/short.mp4":  # promises more than it sends, then closes
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:100])
            self.close_connection = True
        elif self.path == "/to-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1:1/x.mp4")
            self.end_headers()
        elif self.path == "/teapot":
            self.send_error(418)
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture(scope="module")
def not_http() -> Iterator[str]:
    """A TCP server that answers garbage instead of HTTP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.recv(1024)
            conn.sendall(b"hello, this is not http\r\n\r\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/x.mp4"
    sock.close()


def _leftovers() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("tagging-fetch-*"))


def test_download_and_cleanup(base: str) -> None:
    before = _leftovers()
    with fetched(f"{base}/ok.mp4") as p:
        assert p.name == "ok.mp4" and p.read_bytes() == BODY
    for odd in ("/a/%2e%2e", "/a/"):  # no usable file name: a safe one is made up
        with fetched(base + odd) as p:
            assert p.parent.name.startswith("tagging-fetch-") and p.read_bytes() == BODY
    assert _leftovers() == before


@pytest.mark.parametrize("path, error, match", [
    ("/missing.mp4", MediaNotFound, "404"),
    ("/teapot", MediaError, "418"),
    ("/short.mp4", MediaError, "truncated"),
    ("/to-ftp", MediaError, "non-http"),
])
def test_bad_downloads_are_typed_and_leave_nothing(base: str, path: str, error: type, match: str) -> None:
    before = _leftovers()
    with pytest.raises(error, match=match) as info, fetched(base + path):
        pass
    assert info.value.source == base + path and _leftovers() == before


def test_limits_and_non_http_servers(base: str, not_http: str) -> None:
    with pytest.raises(LimitExceeded, match="1000-byte"), fetched(f"{base}/ok.mp4", max_bytes=1000):
        pass
    with pytest.raises(MediaError, match="cannot fetch"), fetched(not_http):
        pass


def test_ids_come_from_the_url() -> None:
    assert is_remote("https://cdn.example.com/v/My Clip.mp4") and not is_remote("file:///a.mp4")
    a, b = url_video_id("https://x/v/My%20Clip.mp4?s=1"), url_video_id("https://x/v/My%20Clip.mp4?s=2")
    assert a.startswith("My-Clip-") and a != b and url_video_id("https://x/").startswith("video-")


def test_api_token_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAGGING_API_TOKEN", raising=False)
    assert api_token(None) is None
    (tmp_path / "t").write_text("  s3cret\n")
    assert api_token(str(tmp_path / "t")) == "s3cret"
    monkeypatch.setenv("TAGGING_API_TOKEN", "abc\n")
    assert api_token(None) == "abc"
    for bad in ("", "   ", "caf\u00e9", "two words"):
        monkeypatch.setenv("TAGGING_API_TOKEN", bad)
        with pytest.raises(SystemExit, match="API token"):
            api_token(None)
