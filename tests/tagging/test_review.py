"""Tests of tagging.enrich.review: each flag is tripped by media made to trip it; a good clip passes."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import cv2
import numpy as np
import pytest

from tagging.enrich.review import PolicyResult, PolicyScreen, ReviewConfig, ReviewResult, review
from tagging.errors import MissingDependency
from tagging.media.types import DecodedMedia, MediaInfo

SR = 16000
N_FRAMES = 10


def _scene(i: int, w: int = 320, h: int = 180) -> np.ndarray:
    """A sharp, moving picture: a blocky pattern that pans, with a moving disc."""
    rng = np.random.default_rng(7)
    tiles = rng.integers(30, 220, size=(h // 10 + 2, w // 10 + 4, 3), dtype=np.uint8)
    big = cv2.resize(tiles, None, fx=10, fy=10, interpolation=cv2.INTER_NEAREST)
    frame = np.ascontiguousarray(big[:h, 3 * i : 3 * i + w])
    cv2.circle(frame, (20 + 25 * i, h // 2), 20, (250, 250, 250), -1)
    return frame


def _tone(seconds: float = 10.0, amplitude: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _media(
    frames: list[np.ndarray] | None = None,
    audio: np.ndarray | None | str = "tone",
    width: int = 1280,
    height: int = 720,
    duration: float = 10.0,
) -> DecodedMedia:
    info = MediaInfo(
        path="upload.mp4", container="mp4", size_bytes=1, duration_s=duration, has_video=True,
        has_audio=audio is not None, width=width, height=height, fps=30.0,
    )
    frames = [_scene(i) for i in range(N_FRAMES)] if frames is None else frames
    timestamps = [i * duration / max(1, len(frames)) for i in range(len(frames))]
    sound = _tone(duration) if isinstance(audio, str) else audio
    return DecodedMedia(info=info, frames=frames, timestamps=timestamps, audio=sound, sample_rate=SR)


def _tripped(result: ReviewResult) -> set[str]:
    return {name for name, bad in result.flags.items() if bad}


def test_good_clip_passes() -> None:
    result = review(_media())
    assert _tripped(result) == set() and result.passed and result.blocking == []
    assert result.values["loudness_dbfs"] == pytest.approx(-23.0, abs=0.5)  # 0.1 sine: -23 dBFS
    assert result.values["sharpness"] > ReviewConfig().min_sharpness
    assert result.values["width"] == 1280 and result.values["duration_s"] == 10.0
    assert json.loads(json.dumps(result.to_dict()))["passed"] is True
    expected = {"low_resolution", "too_short", "too_long", "no_video", "black_frames", "frozen", "blurry"}
    assert expected | {"no_audio", "silent", "too_loud", "clipping"} <= set(result.flags)


def test_low_resolution_from_media_info() -> None:
    result = review(_media(width=320, height=240))
    assert _tripped(result) == {"low_resolution"} and not result.passed


def test_too_short_and_too_long() -> None:
    assert _tripped(review(_media(duration=1.0))) == {"too_short"}
    assert _tripped(review(_media(duration=600.0))) == {"too_long"}


def test_silence_and_missing_audio() -> None:
    silent = review(_media(audio=np.zeros(10 * SR, np.float32)))
    assert _tripped(silent) == {"silent"} and silent.passed  # a warning, not blocking
    assert silent.values["loudness_dbfs"] == -120.0
    none = review(_media(audio=None))
    assert _tripped(none) == {"silent", "no_audio"}
    assert none.values["has_audio"] == 0.0 and none.values["loudness_dbfs"] == -120.0


def test_clipped_and_too_loud_audio() -> None:
    clipped = np.clip(_tone(amplitude=1.5), -1.0, 1.0)
    result = review(_media(audio=clipped))
    assert {"clipping", "too_loud"} <= _tripped(result)
    assert result.values["clip_fraction"] > 0.1 and result.values["peak_dbfs"] == pytest.approx(0.0, abs=0.01)
    quiet_clip = _tone(amplitude=0.05)
    quiet_clip[:100] = 1.0  # a few clipped samples, under max_clip_fraction
    assert "clipping" not in _tripped(review(_media(audio=quiet_clip)))


def test_black_frames_are_not_called_frozen_or_blurry() -> None:
    black = [np.zeros((180, 320, 3), np.uint8)] * N_FRAMES
    result = review(_media(frames=black))
    assert _tripped(result) == {"black_frames"} and not result.passed
    assert result.values["black_fraction"] == 1.0 and math.isnan(result.values["sharpness"])
    assert result.to_dict()["values"]["sharpness"] is None
    half = [_scene(i) if i % 2 else np.full((180, 320, 3), 5, np.uint8) for i in range(N_FRAMES)]
    assert review(_media(frames=half)).values["black_fraction"] == 0.5


def test_frozen_frames() -> None:
    result = review(_media(frames=[_scene(0)] * N_FRAMES))
    assert _tripped(result) == {"frozen"} and result.values["frozen_fraction"] == 1.0


def test_blurred_frames() -> None:
    blurred = [cv2.GaussianBlur(_scene(i), (0, 0), 4) for i in range(N_FRAMES)]
    result = review(_media(frames=blurred))
    assert _tripped(result) == {"blurry"} and result.passed  # a warning by default
    assert result.values["sharpness"] < ReviewConfig().min_sharpness
    assert not review(_media(frames=blurred), ReviewConfig(blocking=("blurry",))).passed


def test_no_frames_and_probe_without_size() -> None:
    result = review(_media(frames=[]))
    assert result.flags["no_video"] and not result.passed
    sized = review(_media(width=0, height=0))  # falls back to the sampled frame size
    assert sized.values["width"] == 320 and sized.flags["low_resolution"]


class _FakeScreen(PolicyScreen):
    def screen(self, frames: list[np.ndarray], timestamps: list[float]) -> PolicyResult:
        return PolicyResult(score=0.93, detections=[(timestamps[0], "BUTTOCKS_EXPOSED", 0.93)], frames_screened=1)


def test_explicit_flag_is_recorded_not_dropped() -> None:
    result = review(_media(), screen=_FakeScreen())
    assert result.flags["explicit"] and result.values["explicit_score"] == 0.93
    assert not result.passed and result.blocking == ["explicit"]


@pytest.mark.skipif(importlib.util.find_spec("nudenet") is None, reason="nudenet not installed")
def test_policy_screen_on_harmless_frames() -> None:
    screen = PolicyScreen(max_frames=2)
    policy = screen.screen([_scene(i) for i in range(N_FRAMES)], [float(i) for i in range(N_FRAMES)])
    assert policy.frames_screened == 2 and policy.score < 0.6
    result = review(_media(), screen=screen)
    assert result.flags["explicit"] is False and result.passed


def test_policy_screen_missing_nudenet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nudenet", None)
    with pytest.raises(MissingDependency, match="pip install --no-deps nudenet"):
        review(_media(), screen=PolicyScreen())
