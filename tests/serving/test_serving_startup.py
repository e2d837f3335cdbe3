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

from tagging.cli.main import main
from tagging.serving.hook import HookConfig, UploadHook
from tagging.serving.server import ServerConfig, create_app

ROOT = Path(__file__).resolve().parents[2]


def run_serve(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tagging.cli", "serve", "--port", "0", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_missing_model_exits_before_binding(tmp_path: Path) -> None:
    """The real command in its own process: one line on stderr, exit 2, nothing listens, no catalog made."""
    done = run_serve("--db", str(tmp_path / "db"), "--cb2cf-model", "/nonexistent/model")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "/nonexistent/model" in lines[0], done.stderr
    assert "listening" not in done.stdout and not (tmp_path / "db").exists()


@pytest.mark.parametrize("flag, value", [("--space", "/nonexistent/space"), ("--api-token-file", "/nonexistent/token"),
                                         ("--tag-head", "/nonexistent/head")])
def test_bad_configuration_exits_before_binding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture, flag: str, value: str) -> None:
    def bind(*_: object) -> None:
        raise AssertionError("bound although the configuration is bad")

    monkeypatch.setattr("tagging.serving.server.bind", bind)
    try:
        code = main(["serve", "--port", "0", "--db", str(tmp_path / "db"), flag, value])
    except SystemExit as exc:  # the token file: argparse-style exit with the message
        code, message = exc.code, str(exc.code)
    else:
        message = capsys.readouterr().err
    assert code not in (0, None) and "nonexistent" in message and len(message.strip().splitlines()) == 1, message
    assert not (tmp_path / "db").exists()


def test_a_space_that_is_not_the_models_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    from serving_helpers import make_cb2cf

    from tagging.pipeline import Pipeline

    monkeypatch.setattr("tagging.serving.server.bind", lambda *_: pytest.fail("bound"))
    p = Pipeline()  # extractors are built, no weights loaded
    make_cb2cf(tmp_path / "model", p.dims(), seed=1, cf_dim=8, extractors={m: e.extractor_id for m, e in p.extractors.items()})
    planted_space(n_clusters=2, per_cluster=5, dim=4, seed=3).save(tmp_path / "space4")
    assert main(["serve", "--port", "0", "--db", str(tmp_path / "db"), "--cb2cf-model", str(tmp_path / "model"),
                 "--space", str(tmp_path / "space4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "space" in err[0], err


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
