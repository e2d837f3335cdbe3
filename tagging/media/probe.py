"""Probe a media file with PyAV before anything is decoded.

The probe checks the path, opens the container, reads stream headers and
applies :class:`~tagging.media.types.MediaLimits`. It never decodes a frame, so
an oversized or hostile file is rejected before a decoder touches it.

Rotation: FFmpeg 8 no longer exposes a ``rotate`` stream tag and PyAV 18 has no
reader for stream-level side data (only ``VideoStream.set_display_rotation`` for
writing, and ``VideoFrame.rotation`` on decoded frames). The probe therefore
reads the legacy ``rotate`` tag when present and otherwise parses the display
matrix of the video track's ``tkhd`` box in ISO-BMFF (mp4/mov/m4v/3gp) files.
The decoder (``decode.py``) double-checks against the per-frame display matrix.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import av
import av.container
import av.stream

from tagging.errors import CorruptMedia, LimitExceeded, NoDecodableStream
from tagging.media.container import (
    AV_ERRORS,
    brief_error,
    check_path,
    open_input,
    select_streams,
    stream_seconds,
)
from tagging.media.types import MediaInfo, MediaLimits

logger = logging.getLogger(__name__)

_ISOBMFF_NAMES = ("mov", "mp4", "m4a", "3gp")
_MAX_MOOV_BYTES = 64 * 1024 * 1024


def _container_seconds(container: av.container.InputContainer, streams: list[av.stream.Stream]) -> float:
    """Duration of the file: the container's, else the longest of ``streams``.

    Args:
        container: The open container.
        streams: The streams that will be used.

    Returns:
        The duration in seconds, or 0.0 when unknown.
    """
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return max((stream_seconds(s) for s in streams), default=0.0)


def _frame_rate(stream: av.stream.Stream) -> float:
    """Frame rate of a video stream: average, else guessed, else base rate.

    Args:
        stream: The video stream.

    Returns:
        Frames per second, or 0.0 when unknown.
    """
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def _snap_rotation(degrees: float) -> int:
    """Round a clockwise angle to 0/90/180/270.

    Args:
        degrees: Clockwise angle in degrees.

    Returns:
        The nearest multiple of 90 in [0, 360).
    """
    return int(round(degrees / 90.0)) * 90 % 360


def read_rotation(path: Path, container: av.container.InputContainer, stream: av.stream.Stream) -> int:
    """Read from headers the clockwise rotation needed to show ``stream`` upright.

    Args:
        path: The media file (re-read for the ISO-BMFF ``tkhd`` matrix).
        container: The open container.
        stream: The video stream.

    Returns:
        0, 90, 180 or 270; 0 when the headers say nothing or cannot be parsed.
    """
    tag = stream.metadata.get("rotate")
    if tag:
        try:
            return _snap_rotation(float(tag))
        except ValueError:
            logger.warning("%s: ignoring unparsable rotate tag %r", path, tag)
    if any(name in container.format.name for name in _ISOBMFF_NAMES):
        try:
            matrix = _mp4_video_matrix(path, stream.index)
        except (OSError, struct.error, ValueError) as exc:
            logger.debug("%s: could not read tkhd matrix: %s", path, exc)
            matrix = None
        if matrix is not None:
            a, b, c, d = matrix
            if a * d - b * c < 0:
                logger.warning("%s: display matrix mirrors the picture; only its rotation is applied", path)
            return _snap_rotation(math.degrees(math.atan2(b, a)))
    return 0


def _boxes(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Walk the ISO-BMFF boxes in the byte range [start, end).

    Args:
        fh: The file, opened in binary mode.
        start: Offset of the first box header.
        end: Offset where the range ends.

    Yields:
        ``(type, payload_start, payload_end)`` of each box; stops at a
        truncated or malformed header.

    Raises:
        OSError: The file cannot be read.
        struct.error: A 64-bit box size is cut off.
    """
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        header = fh.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        body = pos + 8
        if size == 1:
            size = struct.unpack(">Q", fh.read(8))[0]
            body += 8
        elif size == 0:
            size = end - pos
        if size < body - pos:
            return
        yield kind, body, min(pos + size, end)
        pos += size


def _mp4_video_matrix(path: Path, stream_index: int) -> tuple[float, float, float, float] | None:
    """Read the ``tkhd`` display matrix of the video track matching ``stream_index``.

    Args:
        path: An ISO-BMFF file.
        stream_index: Index of the video stream; the track with that ordinal is
            preferred, else the first video track.

    Returns:
        ``(a, b, c, d)`` of the matrix, or None without a readable ``moov`` or video track.

    Raises:
        OSError: The file cannot be read.
        struct.error: A box is truncated.
        IndexError: A ``tkhd`` box is empty.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        moov = next(((s, e) for kind, s, e in _boxes(fh, 0, size) if kind == b"moov"), None)
        if moov is None or moov[1] - moov[0] > _MAX_MOOV_BYTES:
            return None
        candidates: list[tuple[int, tuple[float, float, float, float]]] = []
        traks = [(s, e) for kind, s, e in _boxes(fh, *moov) if kind == b"trak"]
        for ordinal, (t_start, t_end) in enumerate(traks):
            matrix, handler = None, None
            for kind, s, e in list(_boxes(fh, t_start, t_end)):
                if kind == b"tkhd":
                    fh.seek(s)
                    version = fh.read(1)[0]
                    fh.seek(s + (4 + 36 + 16 if version == 1 else 4 + 20 + 16))
                    a, b, _u, c, d = struct.unpack(">iiiii", fh.read(20))
                    matrix = (a / 65536.0, b / 65536.0, c / 65536.0, d / 65536.0)
                elif kind == b"mdia":
                    for sub, ss, _se in _boxes(fh, s, e):
                        if sub == b"hdlr":
                            fh.seek(ss + 8)
                            handler = fh.read(4)
            if handler == b"vide" and matrix is not None:
                candidates.append((ordinal, matrix))
    exact = [m for ordinal, m in candidates if ordinal == stream_index]
    if exact:
        return exact[0]
    return candidates[0][1] if candidates else None


def _check_limits(info: MediaInfo, limits: MediaLimits, coded_pixels: int) -> None:
    """Check a probe result against ``limits`` (the file size is checked earlier).

    Args:
        info: The probe result.
        limits: The limits to enforce; a None limit is not checked.
        coded_pixels: Coded width * height of the video stream (before rotation).

    Raises:
        LimitExceeded: Duration, pixel count, frame rate or frame count is over its limit.
    """
    checks = [
        ("duration", info.duration_s, limits.max_duration_s, "s"),
        ("pixel count", coded_pixels, limits.max_pixels, " px"),
        ("frame rate", info.fps, limits.max_fps, " fps"),
        ("frame count", info.frame_count, limits.max_frames, " frames"),
    ]
    for name, value, limit, unit in checks:
        if limit is not None and value > limit:
            raise LimitExceeded(info.path, f"{name} {_num(value)}{unit} is over the limit of {_num(limit)}{unit}")


def _num(value: float) -> str:
    """Format a limit value: ints as they are, floats to 6 significant digits.

    Args:
        value: The number.

    Returns:
        Its text.
    """
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def _read_video_headers(info: MediaInfo, path: Path, container: av.container.InputContainer, video: av.stream.Stream) -> int:
    """Fill the video fields of ``info`` from the video stream's headers.

    Args:
        info: The probe result to update.
        path: The media file.
        container: The open container.
        video: The selected video stream.

    Returns:
        The coded pixel count (width * height before rotation).

    Raises:
        av.FFmpegError: PyAV cannot read the stream headers (also the other ``AV_ERRORS``).
    """
    info.video_codec = video.codec_context.name
    info.fps = _frame_rate(video)
    seconds = stream_seconds(video) or info.duration_s
    info.frame_count = int(video.frames) if video.frames else int(round(seconds * info.fps))
    info.rotation = read_rotation(path, container, video)
    w, h = int(video.width or 0), int(video.height or 0)
    info.width, info.height = (h, w) if info.rotation in (90, 270) else (w, h)
    return w * h


def _read_audio_headers(info: MediaInfo, audio: av.stream.Stream) -> None:
    """Fill the audio fields of ``info`` from the audio stream's headers.

    Args:
        info: The probe result to update.
        audio: The selected audio stream.

    Raises:
        av.FFmpegError: PyAV cannot read the stream headers (also the other ``AV_ERRORS``).
    """
    info.audio_codec = audio.codec_context.name
    info.audio_sample_rate = int(audio.codec_context.sample_rate or 0)
    info.audio_channels = int(audio.codec_context.channels or 0)


def _read_headers(path: Path, size: int, container: av.container.InputContainer) -> tuple[MediaInfo, int]:
    """Build the :class:`MediaInfo` of an open container from its stream headers.

    Args:
        path: The media file.
        size: Its size in bytes.
        container: The open container.

    Returns:
        The probe result and the coded pixel count of the video stream (0 without video).

    Raises:
        NoDecodableStream: The container has no audio or video stream with a decoder.
        av.FFmpegError: PyAV cannot read the stream headers (also the other ``AV_ERRORS``).
    """
    video, audio = select_streams(container)
    if video is None and audio is None:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise NoDecodableStream(str(path), f"no decodable audio or video stream (streams: {', '.join(kinds)})")
    used = [s for s in (video, audio) if s is not None]
    info = MediaInfo(
        path=str(path),
        container=container.format.name,
        size_bytes=size,
        duration_s=_container_seconds(container, used),
        has_video=video is not None,
        has_audio=audio is not None,
    )
    coded_pixels = 0
    if video is not None:
        coded_pixels = _read_video_headers(info, path, container, video)
    if audio is not None:
        _read_audio_headers(info, audio)
    return info, coded_pixels


def probe(path: str | os.PathLike, limits: MediaLimits | None = None) -> MediaInfo:
    """Read what a media file holds, without decoding, and check it against limits.

    Args:
        path: The media file.
        limits: Limits to enforce; ``MediaLimits()`` defaults when None.

    Returns:
        The :class:`MediaInfo` of the file; ``width``/``height`` are display
        dimensions (after rotation).

    Raises:
        MediaNotFound: The path is missing or not a regular file.
        VideoOpenFailure: Empty file, unreadable file or not a media container.
        CorruptMedia: A known container type whose header is damaged or truncated.
        NoDecodableStream: The container has no audio or video stream with a decoder.
        LimitExceeded: File size, duration, pixel count, frame rate or frame count
            is over ``limits``.
    """
    limits = limits or MediaLimits()
    p, size = check_path(path)
    if limits.max_file_bytes is not None and size > limits.max_file_bytes:
        raise LimitExceeded(str(p), f"file size {size} bytes is over the limit of {limits.max_file_bytes} bytes")
    container = open_input(p)
    try:
        info, coded_pixels = _read_headers(p, size, container)
    except AV_ERRORS as exc:
        raise CorruptMedia(str(p), f"cannot read stream headers ({brief_error(exc)})") from None
    finally:
        container.close()
    if info.duration_s <= 0:
        logger.warning("%s: duration unknown; the duration limit cannot be checked", p)
    _check_limits(info, limits, coded_pixels)
    logger.debug("probed %s: %s", p, info)
    return info
