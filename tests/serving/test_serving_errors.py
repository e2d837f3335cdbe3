"""Regression tests of the serving trial's defects: every error is the documented JSON with a 4xx
(or a counted 500), bodies are capped and timed out everywhere, answers leak no server path and
have one shape."""

from __future__ import annotations

import logging
import re
import socket
import time

import pytest
from serving_helpers import BUG_CAPTION

ERROR_KEYS = {"error", "detail", "source"}


def raw_request(port: int, head: str, body: bytes = b"", wait: float = 10.0) -> tuple[float, bytes]:
    """Send ``head`` (+ ``body``) on a raw socket; return the seconds until the answer and the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        t0 = time.monotonic()
        s.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return time.monotonic() - t0, data


def _length(data: bytes) -> int:
    found = re.search(rb"content-length: (\d+)", data, re.IGNORECASE)
    return int(found.group(1)) if found else 0


def port_of(client) -> int:
    return int(str(client.base_url).rsplit(":", 1)[1].strip("/"))


def test_long_file_name_is_a_json_4xx_not_a_500(server) -> None:
    client, _, _ = server
    r = client.post("/videos/by-path", json={"path": "a" * 300 + ".mp4"})
    assert 400 <= r.status_code < 500 and set(r.json()) == ERROR_KEYS, r.text
    assert r.json()["error"] == "MediaNotFound" and "too long" in r.json()["detail"]
    assert len(r.json()["source"]) < 400  # user input echoed only in part


def test_a_500_is_json_counted_and_logged_short(server, caplog: pytest.LogCaptureFixture) -> None:
    client, root, _ = server
    with caplog.at_level(logging.ERROR), open(root / "clip.mp4", "rb") as fh:
        r = client.post("/videos", files={"file": ("clip.mp4", fh, "video/mp4")}, data={"caption": BUG_CAPTION})
    assert r.status_code == 500 and set(r.json()) == ERROR_KEYS and r.json()["error"] == "InternalError"
    assert "RuntimeError" in r.json()["detail"] and "xxxx" not in r.json()["detail"]
    logged = [rec.getMessage() for rec in caplog.records if "RuntimeError" in rec.getMessage()]
    assert logged and all(len(m) < 20_000 for m in logged)  # a 100 kB message is not logged whole
    metrics = client.get("/metrics").text
    assert 'tagging_http_requests_total{method="POST",route="/videos",status="500"} 1.0' in metrics
    assert 'tagging_failures_total{error_class="InternalError"} 1.0' in metrics


def test_every_endpoint_caps_its_body(server) -> None:
    client, _, _ = server
    port = port_of(client)
    secs, answer = raw_request(port, "POST /videos/by-path HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     "Content-Length: 99999999999\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413") and secs < 5 and b'"RequestTooLarge"' in answer
    big = b'{"path": "' + b"a" * 200_000 + b'"}'
    r = client.post("/videos/by-path", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and set(r.json()) == ERROR_KEYS
    chunked = client.post("/videos/up-x/interactions", content=iter([b'{"events": [', b" " * 70_000, b"]}"]),
                          headers={"content-type": "application/json"})  # no Content-Length: counted as it comes
    assert chunked.status_code == 413 and chunked.json()["error"] == "RequestTooLarge"


def test_a_stalled_body_is_given_up(server) -> None:
    client, _, _ = server
    secs, answer = raw_request(port_of(client), "POST /videos/by-path HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n", b'{"pa')
    assert answer.startswith(b"HTTP/1.1 408") and secs < 8 and b'"RequestTimeout"' in answer


def test_framework_errors_have_the_documented_shape(server) -> None:
    client, _, _ = server
    for r in (client.post("/videos/by-path", json={"video_id": "x"}), client.get("/no/such/route"),
              client.put("/videos/x"), client.get("/videos/x/audience", params={"k": "many"})):
        assert set(r.json()) == ERROR_KEYS and isinstance(r.json()["detail"], str), r.text
    assert client.get("/no/such/route").json()["error"] == "NotFound"


def test_answers_leak_no_server_path_and_have_one_shape(server) -> None:
    client, root, _ = server
    with open(root / "clip.mp4", "rb") as fh:
        up = client.post("/videos", files={"file": ("shape.mp4", fh, "video/mp4")}, data={"video_id": "shape-1"})
    assert up.status_code == 201
    got = client.get("/videos/shape-1").json()
    posted = {k: v for k, v in up.json().items() if k not in ("audience", "timings_ms")}
    assert posted.keys() == got.keys() and "fused_vector" not in posted and len(posted["cf_vector"]) == 4
    assert posted["probe_json"]["path"] == "upload://shape.mp4" == got["probe_json"]["path"]
    assert isinstance(got["extractors_json"], dict) and isinstance(got["metadata_json"], dict)
    assert "fused_vector" in client.post("/videos/by-path", json={"path": "clip.mp4", "video_id": "shape-2"},
                                         params={"vectors": True}).json()
    bad = client.post("/videos", files={"file": ("bad name.mp4", b"\0" * 4096, "video/mp4")})
    assert bad.status_code == 422 and bad.json()["source"] == "upload://bad-name.mp4"
    assert "tagging-uploads" not in bad.text and "/tmp" not in bad.text


def test_docs_load_nothing_from_the_internet(server) -> None:
    client, _, _ = server
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert not re.findall(r"(?:src|href)=['\"]https?://", page.text)
    for asset in re.findall(r"(?:src|href)=['\"](/docs/assets/[^'\"]+)", page.text):
        assert client.get(asset).status_code == 200, asset
