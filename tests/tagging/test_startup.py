"""Quick start-up: inputs are checked before any model loads, and each model loads only when needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tagging.pipeline import Pipeline, PipelineConfig
from tagging.runtime import DEVICE_ENV, pick_device, set_device

ROOT = Path(__file__).resolve().parents[2]

# Runs `tagging ingest` in a fresh process, then reports which heavy modules and models it loaded.
_PROBE = """
import json, sys
from tagging.cli.main import main
from tagging import runtime
rc = main(sys.argv[1:])
models = sorted(str(k[0]) for k in runtime._MODELS)
print(json.dumps({"rc": rc, "models": models, "torch": "torch" in sys.modules,
                  "transformers": "transformers" in sys.modules, "librosa": "librosa" in sys.modules}))
"""


def _cold_ingest(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", _PROBE, "ingest", *args], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_check_inputs_refuses_without_models(clips: dict[str, Path]) -> None:
    p = Pipeline()
    ok, bad = p.check_inputs([clips["good"], clips["random"], {"path": clips["good2"], "video_id": "bad id!"},
                              clips["empty"], Path("/nonexistent/x.mp4")])
    assert [it["path"] for it in ok] == [clips["good"]]
    assert [f.error_class for f in bad] == ["VideoOpenFailure", "InvalidVideoId", "VideoOpenFailure", "MediaNotFound"]


def test_cold_bad_file_is_refused_before_any_import_of_a_model(clips: dict[str, Path], tmp_path: Path) -> None:
    out = _cold_ingest(str(clips["random"]), "--db", str(tmp_path / "db"))
    assert out == {"rc": 1, "models": [], "torch": False, "transformers": False, "librosa": False}


def test_cold_ingest_loads_only_what_the_video_needs(clips: dict[str, Path], tmp_path: Path) -> None:
    # a tone and a gradient: no speech (so no Whisper); OCR runs on the frames and so loads
    out = _cold_ingest(str(clips["good"]), "--db", str(tmp_path / "db"), "--json")
    assert out["rc"] == 0
    assert "whisper" not in out["models"] and "rapidocr" in out["models"]


def test_device_setting_is_one_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    set_device("cpu")
    assert os.environ[DEVICE_ENV] == "cpu" and pick_device("auto") == "cpu" and pick_device("auto", "onnxruntime") == "cpu"
    assert pick_device("cuda") == "cuda"  # an explicit device is kept
    set_device("auto")
    assert DEVICE_ENV not in os.environ
    with pytest.raises(ValueError):
        set_device("tpu")


def test_cli_device_option(monkeypatch: pytest.MonkeyPatch) -> None:
    from tagging.cli.main import build_parser
    from tagging.cli.options import pipeline_config

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    for cmd in (["ingest", "x.mp4"], ["backfill", "dir"], ["serve"]):
        args = build_parser().parse_args([*cmd, "--device", "cpu"])
        assert isinstance(pipeline_config(args), PipelineConfig) and os.environ[DEVICE_ENV] == "cpu"
        set_device("auto")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ingest", "x.mp4", "--device", "gpu"])
