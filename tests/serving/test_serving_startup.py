"""Start-up: bad configuration exits nonzero with one line before binding; the address is printed;
models that fail to load after binding stop the server instead of leaving it answering 503."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_helpers import FakePipeline, planted_space

from tagging.serving.hook import HookConfig, UploadHook
from tagging.serving.server import ServerConfig, create_app

ROOT = Path(__file__).resolve().parents[2]


def run_serve(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tagging.cli", "serve", "--port", "0", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("flag, value", [("--cb2cf-model", "/nonexistent/model"), ("--space", "/nonexistent/space"),
                                         ("--api-token-file", "/nonexistent/token"), ("--tag-head", "/nonexistent/head")])
def test_bad_configuration_exits_before_binding(tmp_path: Path, flag: str, value: str) -> None:
    done = run_serve("--db", str(tmp_path / "db"), flag, value)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "nonexistent" in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert "listening" not in done.stdout  # never bound
    assert not (tmp_path / "db").exists()


def test_a_space_that_is_not_the_models_is_refused(tmp_path: Path) -> None:
    from serving_helpers import make_cb2cf

    from tagging.pipeline import Pipeline

    planted_space(n_clusters=2, per_cluster=5, dim=8).save(tmp_path / "space")
    p = Pipeline()
    make_cb2cf(tmp_path / "model", p.dims(), seed=1, cf_dim=8,
               extractors={m: e.extractor_id for m, e in p.extractors.items()})  # no space in its manifest: fine
    other = planted_space(n_clusters=2, per_cluster=5, dim=4, seed=3)
    other.save(tmp_path / "space4")
    done = run_serve("--db", str(tmp_path / "db"), "--cb2cf-model", str(tmp_path / "model"), "--space",
                     str(tmp_path / "space4"))
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_load_failure_after_binding_stops_the_server(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    class Broken(FakePipeline):
        def load_models(self) -> float:
            raise OSError("weights vanished")

    stopped: list[str] = []
    cfg = HookConfig(db=str(tmp_path / "db"), maintenance_interval_s=None)
    app = create_app(ServerConfig(hook=cfg), hook=UploadHook(cfg, pipeline=Broken()))
    app.state.on_fatal = stopped.append
    with TestClient(app) as client:
        for _ in range(100):
            if stopped:
                break
            time.sleep(0.05)
        assert stopped and "weights vanished" in stopped[0]
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert client.get("/readyz").status_code == 503


def test_serve_prints_its_address(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tagging.cli", "serve", "--port", "0", "--db", str(tmp_path / "db")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline()
        assert line.startswith("tagging serve: listening on http://127.0.0.1:"), line
        url = line.split("listening on ")[1].split()[0]
        assert httpx.get(f"{url}/healthz", timeout=30).json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(30)
