"""Review gate: the technical and policy checks a platform runs before distributing an upload.

Every check gives a flag (True means a problem) and a value, so that a reviewer or a
dashboard can see why an upload was held. Nothing is dropped silently: a blocking flag sets
``passed = False`` and the caller decides what to do.

Values are computed on what the decoder hands over: frames are sampled and already
downscaled (longest side 320 px by default), so resolution comes from :class:`MediaInfo`,
and the blur measure (variance of the Laplacian) is taken at the sampled size. Downscaling
sharpens, so ``min_sharpness`` is calibrated for ~320 px frames; raise it for larger ones.

The optional :class:`PolicyScreen` runs NudeNet (``pip install nudenet``; its 320n ONNX
model ships in the wheel, no download at run time). NudeNet declares a dependency on
``opencv-python-headless``, which would be a second OpenCV build beside the project's
``opencv-python``; install it with ``pip install --no-deps nudenet`` (its other
dependencies, numpy and onnxruntime, are already here; it only uses ``cv2`` core and dnn
calls, which ``opencv-python`` provides).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tagging.errors import MissingDependency
from tagging.media.types import DecodedMedia
from tagging.runtime import cached_model, pick_device

logger = logging.getLogger(__name__)

POLICY_INSTALL_HINT = "pip install --no-deps nudenet (its ONNX model ships in the wheel)"
EXPLICIT_LABELS = (
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
)
_SILENCE_FLOOR_DBFS = -120.0


@dataclass
class ReviewConfig:
    """Thresholds of the review gate.

    Attributes:
        min_short_side: Smallest accepted short side of the source video, pixels.
        min_duration_s: Shortest accepted duration.
        max_duration_s: Longest accepted duration.
        silence_dbfs: Audio whose RMS level is below this is ``silent``.
        loud_dbfs: Audio whose RMS level is above this is ``too_loud``.
        clip_level: Absolute sample value that counts as clipped.
        max_clip_fraction: ``clipping`` when more samples than this fraction are clipped.
        dark_luma: A frame whose mean luma (0-255) is below this counts as black.
        max_black_fraction: ``black_frames`` when more sampled frames than this are black.
        frozen_diff: Consecutive sampled frames whose mean absolute grey difference is
            below this count as frozen (identical).
        max_frozen_fraction: ``frozen`` when more consecutive pairs than this are frozen.
        min_sharpness: ``blurry`` when the median variance of the Laplacian of the non-black
            sampled frames is below this.
        explicit_threshold: ``explicit`` when the policy screen's score reaches this.
        blocking: Flags that fail the review; the others are warnings. ``truncated`` (the file's data
            ends before its header's duration: an upload cut short) is blocking by default.
    """

    min_short_side: int = 360
    min_duration_s: float = 3.0
    max_duration_s: float = 180.0
    silence_dbfs: float = -50.0
    loud_dbfs: float = -6.0
    clip_level: float = 0.999
    max_clip_fraction: float = 0.001
    dark_luma: float = 16.0
    max_black_fraction: float = 0.5
    frozen_diff: float = 0.5
    max_frozen_fraction: float = 0.8
    min_sharpness: float = 60.0
    explicit_threshold: float = 0.6
    blocking: tuple[str, ...] = (
        "truncated",
        "no_video",
        "low_resolution",
        "too_short",
        "too_long",
        "black_frames",
        "frozen",
        "explicit",
    )


@dataclass
class ReviewResult:
    """The outcome of :func:`review`.

    Attributes:
        flags: Check name -> True when it found a problem.
        values: Measured values (``nan`` where a value cannot be measured, e.g. blur of a
            video without frames); ``to_dict`` writes those as None.
        passed: True when no blocking flag is set.
        blocking: The blocking flags that are set.
    """

    flags: dict[str, bool] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    passed: bool = True
    blocking: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (``nan`` values become None)."""
        out = asdict(self)
        out["values"] = {k: (None if math.isnan(v) else v) for k, v in self.values.items()}
        return out


def _dbfs(x: float) -> float:
    return max(_SILENCE_FLOOR_DBFS, 20.0 * math.log10(x)) if x > 0 else _SILENCE_FLOOR_DBFS


def _grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _check_audio(media: DecodedMedia, cfg: ReviewConfig, flags: dict[str, bool], values: dict[str, float]) -> None:
    audio = media.audio
    if audio is None or np.asarray(audio).size == 0:
        flags.update(no_audio=True, silent=True, too_loud=False, clipping=False)
        values.update(has_audio=0.0, loudness_dbfs=_SILENCE_FLOOR_DBFS, peak_dbfs=_SILENCE_FLOOR_DBFS, clip_fraction=0.0)
        return
    samples = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1))
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    peak = float(np.max(np.abs(samples)))
    clip_fraction = float(np.mean(np.abs(samples) >= cfg.clip_level))
    values.update(has_audio=1.0, loudness_dbfs=round(_dbfs(rms), 2), peak_dbfs=round(_dbfs(peak), 2), clip_fraction=clip_fraction)
    flags.update(
        no_audio=False,
        silent=values["loudness_dbfs"] < cfg.silence_dbfs,
        too_loud=values["loudness_dbfs"] > cfg.loud_dbfs,
        clipping=clip_fraction > cfg.max_clip_fraction,
    )


def _check_frames(media: DecodedMedia, cfg: ReviewConfig, flags: dict[str, bool], values: dict[str, float]) -> None:
    import cv2

    greys = [_grey(np.asarray(f)) for f in media.frames]
    if not greys:
        flags.update(no_video=True, black_frames=False, frozen=False, blurry=False)
        values.update(sampled_frames=0.0, black_fraction=math.nan, frozen_fraction=math.nan, sharpness=math.nan)
        return
    dark = [float(g.mean()) < cfg.dark_luma for g in greys]
    frozen = [
        greys[i].shape == greys[i + 1].shape and float(cv2.absdiff(greys[i], greys[i + 1]).mean()) < cfg.frozen_diff
        for i in range(len(greys) - 1)
        if not (dark[i] and dark[i + 1])  # two black frames in a row are black, not frozen
    ]
    sharp = [float(cv2.Laplacian(g, cv2.CV_64F).var()) for g, d in zip(greys, dark) if not d]
    values.update(
        sampled_frames=float(len(greys)),
        black_fraction=float(np.mean(dark)),
        frozen_fraction=float(np.mean(frozen)) if frozen else 0.0,
        sharpness=round(float(np.median(sharp)), 2) if sharp else math.nan,
    )
    flags.update(
        no_video=False,
        black_frames=values["black_fraction"] > cfg.max_black_fraction,
        frozen=len(frozen) > 0 and values["frozen_fraction"] > cfg.max_frozen_fraction,
        blurry=bool(sharp) and values["sharpness"] < cfg.min_sharpness,
    )


def review(
    media: DecodedMedia, config: ReviewConfig | None = None, screen: PolicyScreen | None = None
) -> ReviewResult:
    """Run the review gate on decoded media.

    Args:
        media: Decoded frames and audio plus the probe's :class:`MediaInfo`.
        config: Thresholds; defaults when None.
        screen: An explicit-imagery screen; when given, ``explicit`` and
            ``explicit_score`` are added (the flag is blocking by default).

    Returns:
        Flags, values and whether the upload passed.

    Raises:
        MissingDependency: ``screen`` was given but nudenet is not installed.
    """
    cfg = config or ReviewConfig()
    info = media.info
    flags: dict[str, bool] = {}
    values: dict[str, float] = {}
    width, height = info.width, info.height
    if (not width or not height) and media.frames:  # probe lacked it: use the (downscaled) frames
        height, width = np.asarray(media.frames[0]).shape[:2]
    duration = info.duration_s or (media.timestamps[-1] if media.timestamps else 0.0)
    if media.truncated_at is not None:  # the header promises more than the file holds
        duration = media.truncated_at
        values["header_duration_s"] = float(info.duration_s)
    flags["truncated"] = media.truncated_at is not None
    values.update(width=float(width), height=float(height), duration_s=float(duration))
    flags["low_resolution"] = min(width, height) < cfg.min_short_side
    flags["too_short"] = duration < cfg.min_duration_s
    flags["too_long"] = duration > cfg.max_duration_s
    _check_frames(media, cfg, flags, values)
    _check_audio(media, cfg, flags, values)
    if screen is not None:
        policy = screen.screen(media.frames, media.timestamps)
        values["explicit_score"] = policy.score
        flags["explicit"] = policy.score >= cfg.explicit_threshold
    blocking = [name for name in cfg.blocking if flags.get(name)]
    if blocking:
        logger.info("review of %s failed: %s", info.path, ", ".join(blocking))
    return ReviewResult(flags=flags, values=values, passed=not blocking, blocking=blocking)


@dataclass
class PolicyResult:
    """The explicit-imagery screen of one video.

    Attributes:
        score: Highest detector confidence of an exposed-body label over the screened frames.
        detections: ``(timestamp, label, score)`` of each explicit-label detection.
        frames_screened: How many frames were run through the detector.
    """

    score: float = 0.0
    detections: list[tuple[float, str, float]] = field(default_factory=list)
    frames_screened: int = 0


class PolicyScreen:
    """Explicit-imagery screen with NudeNet; the detector loads once per process.

    Args:
        max_frames: Most frames screened per video (spread over the clip).
        min_score: Detections below this confidence are ignored.
    """

    def __init__(self, max_frames: int = 6, min_score: float = 0.3) -> None:
        self.max_frames = max_frames
        self.min_score = min_score

    def load(self) -> Any:
        """Return the process-wide detector, creating it on first use.

        Raises:
            MissingDependency: nudenet is not installed.
        """
        try:
            import nudenet
            import onnxruntime
            from nudenet import NudeDetector
        except ImportError as exc:
            raise MissingDependency("policy", f"nudenet is not installed: {POLICY_INSTALL_HINT}") from exc
        cuda = pick_device("auto", "onnxruntime") == "cuda"

        def load() -> Any:
            detector = NudeDetector()
            if cuda:  # NudeDetector ignores its providers argument; rebuild the session
                model = os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")
                providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
                detector.onnx_session = onnxruntime.InferenceSession(model, providers=providers)
            return detector

        return cached_model(("nudenet", cuda), load)

    def screen(self, frames: list[np.ndarray], timestamps: list[float]) -> PolicyResult:
        """Score a few frames of one video for explicit imagery.

        Args:
            frames: RGB uint8 frames.
            timestamps: Time in seconds of each frame.

        Returns:
            The highest explicit-label score and the detections behind it.

        Raises:
            MissingDependency: nudenet is not installed.
        """
        if not frames:
            return PolicyResult()
        import cv2

        detector = self.load()
        n = len(frames)
        picks = sorted({int((i + 0.5) * n / min(n, self.max_frames)) for i in range(min(n, self.max_frames))})
        result = PolicyResult(frames_screened=len(picks))
        for idx in picks:
            bgr = cv2.cvtColor(np.asarray(frames[idx]), cv2.COLOR_RGB2BGR)  # NudeNet expects cv2.imread order
            for det in detector.detect(bgr):
                if det["class"] in EXPLICIT_LABELS and det["score"] >= self.min_score:
                    ts = float(timestamps[idx]) if idx < len(timestamps) else math.nan
                    result.detections.append((ts, det["class"], round(float(det["score"]), 4)))
        result.score = max((d[2] for d in result.detections), default=0.0)
        return result
