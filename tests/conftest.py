"""Shared fixtures: generated media and one real pipeline per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))  # media_factory, serving_helpers

import media_factory as mf  # noqa: E402


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small set of generated clips, good and bad, shared by the pipeline tests."""
    d = tmp_path_factory.mktemp("clips")
    good = mf.make_video(d / "good.mp4", seconds=2.0, size=(160, 120), audio_kind="tone")
    out = {
        "good": good,
        "good2": mf.make_video(d / "good2.mp4", seconds=1.5, size=(160, 120), pattern="colors", audio_kind="noise"),
        "audio_only": mf.make_audio_only(d / "audio_only.m4a", seconds=1.5),
        "video_only": mf.make_video_only(d / "video_only.mp4", seconds=1.5),
        "rotated": mf.make_rotated_video(d / "rotated.mp4", rotation=90, seconds=1.0),
        "vfr": mf.make_vfr_video(d / "vfr.mp4"),
        "truncated": mf.truncate(good, d / "truncated.mp4", 0.5),
        "random": mf.random_bytes(d / "random.mp4", 4096),
        "empty": mf.empty(d / "empty.mp4"),
    }
    return out


@pytest.fixture(scope="session")
def pipeline():
    """The default pipeline with the real shipped models, loaded once."""
    from tagging.pipeline import Pipeline

    p = Pipeline()
    p.load_models()
    return p


@pytest.fixture(scope="session")
def s3():
    """Storage options of a running local S3-compatible server with an empty bucket (skips without moto)."""
    pytest.importorskip("moto.server", reason="pip install -e '.[test]' (moto's S3 server)")
    from s3_server import s3_server

    with s3_server() as opts:
        yield opts
