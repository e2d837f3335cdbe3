"""Generate small test media files with PyAV.

Every function writes one file (usually into a pytest ``tmp_path``) and returns
its path. Video frames carry content that tests can check after decoding:

* the top-left quadrant of the *upright* picture is bright (``MARK_LEVEL``) and
  the rest is dark, so :func:`is_upright` can tell whether a frame was rotated
  correctly;
* the bottom-right strip holds the frame index as an 8-bit bar code, so
  :func:`read_frame_index` can tell which frame a decoded image is.

Rotation convention: ``rotation`` is the clockwise angle a player must rotate
the stored pictures to show them upright (the same meaning as
``MediaInfo.rotation``). The stored pictures are the upright ones turned
counter-clockwise by ``rotation``, and the container carries a display matrix
written with ``VideoStream.set_display_rotation(-rotation)`` (PyAV 18; FFmpeg 8's
mp4 muxer ignores the old ``stream.metadata["rotate"]`` tag).

Encoders used: libx264 (video) and aac (audio), both present in the PyAV 18
wheels; ``.wav`` files use pcm_s16le.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

MARK_LEVEL = 230
"""Grey level of the orientation mark and of set bits in the bar code."""

DARK_LEVEL = 20
"""Grey level of cleared bits in the bar code."""

BITS = 8
"""Number of bits in the frame-index bar code (indices 0..255)."""

DEFAULT_VFR_PTS_MS: tuple[int, ...] = (
    0, 40, 80, 300, 330, 360, 900, 920, 940, 960, 1500, 1700, 1710, 1720, 2400, 2450, 2500, 2900,
)
"""Irregular presentation times (ms) used by :func:`make_vfr_video`."""


# ----------------------------------------------------------------------------- pictures


def upright_picture(index: int, size: tuple[int, int], pattern: str = "gradient") -> np.ndarray:
    """Draw the upright RGB picture for frame ``index``.

    Args:
        index: Frame index, encoded in the bar code (modulo 256).
        size: (width, height) of the upright picture.
        pattern: Background: ``"gradient"`` (moving blue gradient), ``"colors"``
            (solid colour cycling per frame) or ``"flat"`` (constant grey).

    Returns:
        uint8 array of shape (height, width, 3).
    """
    width, height = size
    img = np.zeros((height, width, 3), np.uint8)
    if pattern == "gradient":
        ramp = (np.arange(width) * 2 + index * 4) % 100
        img[:, :, 2] = ramp[None, :].astype(np.uint8)
        img[:, :, 1] = (ramp[None, :] // 2).astype(np.uint8)
    elif pattern == "colors":
        palette = [(90, 0, 0), (0, 90, 0), (0, 0, 90), (90, 90, 0), (0, 90, 90), (90, 0, 90)]
        img[:, :] = palette[index % len(palette)]
    elif pattern == "flat":
        img[:, :] = 60
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    img[: height // 2, : width // 2] = MARK_LEVEL
    x0, y0, y1 = width // 2, height * 3 // 4, height
    cell = (width - x0) // BITS
    for bit in range(BITS):
        level = MARK_LEVEL if (index >> (BITS - 1 - bit)) & 1 else DARK_LEVEL
        img[y0:y1, x0 + bit * cell : x0 + (bit + 1) * cell] = level
    return img


def read_frame_index(frame: np.ndarray) -> int:
    """Read the bar-code frame index back from an upright decoded RGB frame of any size."""
    height, width = frame.shape[:2]
    grey = frame.astype(np.float32).mean(axis=2)
    y = int(height * 7 / 8)
    x0 = width / 2
    cell = (width - x0) / BITS
    value = 0
    for bit in range(BITS):
        x = int(x0 + (bit + 0.5) * cell)
        value = (value << 1) | int(grey[y, x] > (MARK_LEVEL + DARK_LEVEL) / 2)
    return value


def is_upright(frame: np.ndarray) -> bool:
    """True when the bright orientation mark is in the top-left quadrant of ``frame``."""
    height, width = frame.shape[:2]
    grey = frame.astype(np.float32).mean(axis=2)
    h2, w2 = height // 2, width // 2
    quads = {
        "tl": grey[:h2, :w2].mean(),
        "tr": grey[:h2, w2:].mean(),
        "bl": grey[h2:, :w2].mean(),
        "br": grey[h2:, w2:].mean(),
    }
    return max(quads, key=quads.get) == "tl" and quads["tl"] > 180


# ----------------------------------------------------------------------------- audio


def audio_signal(seconds: float, sample_rate: int, kind: str = "tone", seed: int = 0) -> np.ndarray:
    """Return mono float32 samples: ``"tone"`` (440 Hz), ``"noise"`` (white) or ``"silence"``."""
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    if kind == "tone":
        return (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    if kind == "noise":
        return (0.3 * np.random.default_rng(seed).uniform(-1, 1, n)).astype(np.float32)
    if kind == "silence":
        return np.zeros(n, np.float32)
    raise ValueError(f"unknown audio kind {kind!r}")


def _add_audio_stream(container: av.container.OutputContainer, codec: str, sample_rate: int, channels: int):
    stream = container.add_stream(codec, rate=sample_rate)
    stream.layout = "mono" if channels == 1 else "stereo"
    return stream


def _encode_audio(container, stream, samples: np.ndarray, sample_rate: int, channels: int) -> None:
    """Encode mono float samples (duplicated to ``channels``) in 1024-sample chunks."""
    layout = "mono" if channels == 1 else "stereo"
    chunk = 1024
    for start in range(0, len(samples), chunk):
        block = samples[start : start + chunk]
        planar = np.repeat(block[None, :], channels, axis=0).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


# ----------------------------------------------------------------------------- files


def make_video(
    path: str | os.PathLike,
    seconds: float = 2.0,
    fps: int = 15,
    size: tuple[int, int] = (160, 120),
    with_audio: bool = True,
    audio_kind: str = "tone",
    pattern: str = "gradient",
    rotation: int = 0,
    gop: int | None = None,
    sample_rate: int = 22050,
    channels: int = 1,
    faststart: bool = False,
    preset: str = "ultrafast",
) -> Path:
    """Write an H.264 (+ AAC) mp4/mkv/mov clip with constant frame rate.

    Args:
        path: Output file; the container follows the extension.
        seconds: Duration.
        fps: Frame rate.
        size: Upright (display) size as (width, height); must be even.
        with_audio: Add an AAC audio track.
        audio_kind: ``"tone"``, ``"noise"`` or ``"silence"``.
        pattern: Background pattern, see :func:`upright_picture`.
        rotation: Clockwise degrees (0, 90, 180, 270) a player rotates the stored
            pictures by; stored pictures are turned the other way.
        gop: Keyframe interval in frames (default: one per second).
        sample_rate: Audio sample rate.
        channels: Audio channels (1 or 2).
        faststart: Put the mp4 ``moov`` atom at the front of the file.
        preset: x264 preset; "ultrafast" has no B-frames, "veryfast" and slower have them.

    Returns:
        The path written.
    """
    path = Path(path)
    options = {"movflags": "faststart"} if faststart else {}
    n_frames = int(round(seconds * fps))
    with av.open(str(path), "w", options=options) as container:
        video = container.add_stream("libx264", rate=fps)
        stored_w, stored_h = size if rotation % 180 == 0 else (size[1], size[0])
        video.width, video.height = stored_w, stored_h
        video.pix_fmt = "yuv420p"
        video.codec_context.gop_size = gop or fps
        video.options = {"preset": preset, "crf": "18"}
        if rotation % 360:
            video.set_display_rotation(-rotation)
        audio = _add_audio_stream(container, "aac", sample_rate, channels) if with_audio else None
        pics = (np.rot90(upright_picture(i, size, pattern), k=(rotation // 90) % 4) for i in range(n_frames))
        _encode_frames(container, video, pics, fps)
        if audio is not None:
            _encode_audio(container, audio, audio_signal(seconds, sample_rate, audio_kind), sample_rate, channels)
    return path


def _encode_frames(container: av.container.OutputContainer, video: av.VideoStream, pics: Iterable[np.ndarray], fps: int) -> None:
    """Encode RGB pictures at a constant frame rate (pts = index) and flush the encoder."""
    for i, pic in enumerate(pics):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pic), format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1, fps)
        for packet in video.encode(frame):
            container.mux(packet)
    for packet in video.encode(None):
        container.mux(packet)


def make_video_only(path: str | os.PathLike, **kwargs) -> Path:
    """Same as :func:`make_video` without an audio track."""
    return make_video(path, with_audio=False, **kwargs)


def make_rotated_video(path: str | os.PathLike, rotation: int = 90, **kwargs) -> Path:
    """Same as :func:`make_video` with a display-matrix rotation (clockwise degrees)."""
    return make_video(path, rotation=rotation, **kwargs)


def make_audio_only(
    path: str | os.PathLike,
    seconds: float = 2.0,
    sample_rate: int = 22050,
    channels: int = 2,
    kind: str = "tone",
) -> Path:
    """Write an audio-only file: pcm_s16le for ``.wav``, AAC otherwise (``.m4a``, ``.mp4``)."""
    path = Path(path)
    samples = audio_signal(seconds, sample_rate, kind)
    codec = "pcm_s16le" if path.suffix.lower() == ".wav" else "aac"
    with av.open(str(path), "w") as container:
        stream = _add_audio_stream(container, codec, sample_rate, channels)
        _encode_audio(container, stream, samples, sample_rate, channels)
    return path


def make_vfr_video(
    path: str | os.PathLike,
    pts_ms: Sequence[int] = DEFAULT_VFR_PTS_MS,
    size: tuple[int, int] = (160, 120),
) -> Path:
    """Write a variable-frame-rate H.264 mp4: frame ``i`` shows index ``i`` at ``pts_ms[i]`` ms."""
    path = Path(path)
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.time_base = time_base
        video.codec_context.time_base = time_base
        video.options = {"preset": "ultrafast", "crf": "18"}
        for i, pts in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(upright_picture(i, size, "flat"), format="rgb24")
            frame.pts = int(pts)
            frame.time_base = time_base
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


def make_subtitle_only(path: str | os.PathLike) -> Path:
    """Write a SubRip (.srt) file: a container that opens but has no audio or video stream."""
    path = Path(path)
    path.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:00:01,000 --> 00:00:02,000\nworld\n")
    return path


def _stream_packet_spans(path: Path, kind: str) -> list[tuple[int, int]]:
    spans = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0] if kind == "audio" else container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size and packet.pos is not None and packet.pos >= 0:
                spans.append((packet.pos, packet.size))
    return spans


def garble_stream(path: str | os.PathLike, kind: str, seed: int = 0) -> Path:
    """Overwrite every packet payload of the first ``kind`` ("audio"/"video") stream with random bytes.

    The container structure stays valid, so the file still opens and the other
    stream still decodes.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    spans = _stream_packet_spans(path, kind)
    with open(path, "r+b") as fh:
        for pos, size in spans:
            fh.seek(pos)
            fh.write(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def make_corrupt_audio_video(path: str | os.PathLike, **kwargs) -> Path:
    """A good video track with an audio track whose packets are random bytes."""
    return garble_stream(make_video(path, with_audio=True, **kwargs), "audio")


def make_corrupt_video_audio(path: str | os.PathLike, **kwargs) -> Path:
    """A good audio track with a video track whose packets are random bytes."""
    return garble_stream(make_video(path, with_audio=True, **kwargs), "video")


def truncate(path: str | os.PathLike, out: str | os.PathLike, fraction: float) -> Path:
    """Copy the first ``fraction`` of ``path`` to ``out``."""
    data = Path(path).read_bytes()
    out = Path(out)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def random_bytes(path: str | os.PathLike, n: int = 4096, seed: int = 0) -> Path:
    """Write ``n`` seeded random bytes."""
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes())
    return path


def empty(path: str | os.PathLike) -> Path:
    """Write a 0-byte file."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def make_clip(
    path: str | os.PathLike,
    frames: Sequence[np.ndarray],
    fps: int = 10,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> Path:
    """Write an H.264 (+ AAC) mp4 from given RGB frames (even sizes) and mono float audio."""
    path = Path(path)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = w, h
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "18"}
        stream = _add_audio_stream(container, "aac", sample_rate, 1) if audio is not None else None
        _encode_frames(container, video, frames, fps)
        if stream is not None:
            _encode_audio(container, stream, np.asarray(audio, np.float32), sample_rate, 1)
    return path
