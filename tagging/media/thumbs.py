"""Small JPEG thumbnails of decoded frames, stored with a row so a page needs no re-decode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

THUMB_MAX_SIDE = 160
THUMB_QUALITY = 75
MAX_FRAME_THUMBS = 6


@dataclass
class Thumbnails:
    """A poster frame and a few sampled frames with their times, as JPEG bytes.

    Attributes:
        poster: JPEG of the middle sampled frame (the catalog's picture), or None without frames.
        frames: JPEGs of up to ``MAX_FRAME_THUMBS`` sampled frames, in time order.
        times: Presentation time in seconds of each of ``frames``.
    """

    poster: bytes | None = None
    frames: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)


def jpeg_thumbnail(frame: np.ndarray, max_side: int = THUMB_MAX_SIDE, quality: int = THUMB_QUALITY) -> bytes:
    """Encode an RGB uint8 frame as a JPEG whose longest side is at most ``max_side``.

    Raises:
        ValueError: The frame is not an (H, W, 3) array, or it cannot be encoded.
    """
    import cv2

    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
    h, w = frame.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def make_thumbnails(frames: Sequence[np.ndarray], timestamps: Sequence[float], limit: int = MAX_FRAME_THUMBS) -> Thumbnails:
    """Thumbnails of up to ``limit`` evenly spaced frames; the middle one is the poster."""
    if not frames:
        return Thumbnails()
    idx = np.unique(np.linspace(0, len(frames) - 1, min(limit, len(frames))).round().astype(int))
    jpegs = [jpeg_thumbnail(frames[i]) for i in idx]
    times = [round(float(timestamps[i]), 3) if i < len(timestamps) else 0.0 for i in idx]
    return Thumbnails(poster=jpegs[len(jpegs) // 2], frames=jpegs, times=times)
