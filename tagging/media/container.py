"""Low-level PyAV container helpers shared by the probe and the decoder.

Opening a file (with typed errors), picking the streams to use, reading stream
durations and the keyframe index, deciding when to seek, demuxing/decoding one
stream while counting the packets the decoder rejects, and turning a decoded
frame into an upright RGB array. Nothing here applies limits or picks which
frames to sample: :mod:`tagging.media.probe` and :mod:`tagging.media.decode`
build on it (container -> probe -> decode).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import av
import av.container
import av.frame
import av.stream
import cv2
import numpy as np

from tagging.errors import CorruptMedia, MediaNotFound, VideoOpenFailure

logger = logging.getLogger(__name__)

AV_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, OSError, ValueError, RuntimeError, EOFError)
"""Exceptions PyAV raises on bad input; callers wrap them in a typed MediaError."""

DECODE_ERRORS: tuple[type[BaseException], ...] = (*AV_ERRORS, cv2.error)
"""Exceptions decoding and converting frames can raise (PyAV and OpenCV)."""

SEEK_GAP_S = 2.0
"""Without a keyframe index, seek only when the next target is this far ahead."""

MAX_ERROR_RATIO = 0.5
"""A stream whose share of undecodable packets is above this counts as corrupt."""

# Leading bytes of container formats we know; a file that starts like one of these
# but fails to open is a damaged container (CorruptMedia), not a non-media file.
_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # ISO-BMFF: mp4, mov, m4a, 3gp
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"wide"),
    (4, b"free"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # wav, avi
    (0, b"OggS"),
    (0, b"fLaC"),
    (0, b"FLV"),
    (0, b"ID3"),  # mp3
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
)
_CV_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
# Demuxers that accept any bytes by file extension and render them as text-mode art
# (e.g. "notes.txt" opens as a "tty" video); such files are not uploads we can tag.
_TEXT_ART_FORMATS = frozenset({"tty", "bin", "adf", "idf", "xbin"})


def check_path(path: str | os.PathLike) -> tuple[Path, int]:
    """Check that ``path`` is a non-empty regular file and return it with its size.

    Args:
        path: File to check.

    Returns:
        The path and its size in bytes.

    Raises:
        MediaNotFound: The path does not exist or is not a regular file.
        VideoOpenFailure: The file is empty or cannot be read.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise MediaNotFound(str(p), "file does not exist") from None
    except OSError as exc:
        raise MediaNotFound(str(p), f"cannot stat file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise MediaNotFound(str(p), "not a regular file")
    if st.st_size == 0:
        raise VideoOpenFailure(str(p), "empty file (0 bytes)")
    if not os.access(p, os.R_OK):
        raise VideoOpenFailure(str(p), "file is not readable (permission denied)")
    return p, st.st_size


def looks_like_container(path: Path) -> bool:
    """Tell whether the first bytes of ``path`` match a known container signature.

    Args:
        path: File to inspect.

    Returns:
        True on a match; False otherwise, also when the file cannot be read.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return any(head[off : off + len(sig)] == sig for off, sig in _SIGNATURES)


def open_input(path: Path) -> av.container.InputContainer:
    """Open ``path`` with PyAV, wrapping every failure in a typed error.

    Args:
        path: A path already checked by :func:`check_path`.

    Returns:
        The open input container; the caller closes it.

    Raises:
        CorruptMedia: The file starts like a known container but cannot be opened
            (e.g. a truncated mp4 whose ``moov`` atom is missing).
        VideoOpenFailure: The file is not a media container PyAV can open.
    """
    try:
        container = av.open(str(path), mode="r")
    except AV_ERRORS as exc:
        if looks_like_container(path):
            raise CorruptMedia(str(path), f"container header is damaged or truncated ({brief_error(exc)})") from None
        raise VideoOpenFailure(str(path), f"not a media container PyAV can open ({brief_error(exc)})") from None
    if container.format.name in _TEXT_ART_FORMATS:
        container.close()
        raise VideoOpenFailure(str(path), f"not a media container (opened only as text art, {container.format.name!r})")
    return container


def brief_error(exc: BaseException) -> str:
    """Describe a PyAV error on one line, without the repeated file name.

    Args:
        exc: The exception.

    Returns:
        ``"<ExceptionType>: <reason>"``.
    """
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _usable(stream: av.stream.Stream) -> bool:
    """Tell whether ``stream`` has a decoder and is not an attached cover picture.

    Args:
        stream: The stream to check.

    Returns:
        True when the stream can be decoded as content.
    """
    if stream.codec_context is None:
        return False
    return not (stream.disposition & av.stream.Disposition.attached_pic)


def select_streams(container: av.container.InputContainer) -> tuple[av.stream.Stream | None, av.stream.Stream | None]:
    """Pick the video and audio streams to decode.

    Video: the usable stream with the most pixels. Audio: the first usable one,
    preferring one flagged as default.

    Args:
        container: The open container.

    Returns:
        ``(video, audio)``; either may be None.
    """
    videos = [s for s in container.streams.video if _usable(s)]
    audios = [s for s in container.streams.audio if _usable(s)]
    video = max(videos, key=lambda s: (s.width or 0) * (s.height or 0), default=None)
    audio = next((s for s in audios if s.disposition & av.stream.Disposition.default), audios[0] if audios else None)
    return video, audio


def stream_seconds(stream: av.stream.Stream) -> float:
    """Read a stream's duration from its header.

    Args:
        stream: The stream.

    Returns:
        The duration in seconds, or 0.0 when unknown.
    """
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def available_end(stream: av.stream.Stream, file_size: int) -> float | None:
    """Find where a truncated stream's data ends.

    Args:
        stream: The stream, with its packet index.
        file_size: Size of the file in bytes.

    Returns:
        Time (s) of the last indexed packet that lies inside the file when some
        indexed packets lie beyond it; None when none do or there is no index.
    """
    entries = stream.index_entries
    if not len(entries) or not stream.time_base:
        return None
    last = entries[len(entries) - 1]
    if last.pos < 0 or last.pos + last.size <= file_size:
        return None
    inside = [e.timestamp for e in entries if 0 <= e.pos and e.pos + e.size <= file_size]
    start = stream.start_time or 0
    return float((max(inside) - start) * stream.time_base) if inside else 0.0


def frames_exist_until(stream: av.stream.Stream, span: float, fps: float) -> float:
    """Return a time (s) up to which a frame at or after any target surely exists.

    The last indexed packet's dts is a lower bound of the largest pts. Skipping
    frames before a target is only safe below it: beyond, the last frame
    decoded is the fallback and must not have been skipped.

    Args:
        stream: The video stream.
        span: Length of the video in seconds.
        fps: Its frame rate (0 when unknown).

    Returns:
        The time in seconds from the stream start.
    """
    entries = stream.index_entries
    if len(entries) >= 2 and stream.time_base:
        return float((entries[len(entries) - 1].timestamp - (stream.start_time or 0)) * stream.time_base)
    return span - 2.0 / (fps if fps > 0 else 10.0)


def keyframe_ts(stream: av.stream.Stream, ts: int) -> int | None:
    """Look up the indexed keyframe at or before ``ts``.

    Args:
        stream: The stream.
        ts: A timestamp in the stream's time base.

    Returns:
        The keyframe's timestamp, or None without a usable index (a failed
        index lookup counts as none).
    """
    entries = stream.index_entries
    if len(entries) < 2:  # e.g. Matroska before its cues are read: no usable index yet
        return None
    try:
        i = entries.search_timestamp(ts, backward=True)
    except AV_ERRORS:
        return None
    return entries[i].timestamp if i >= 0 else None


def should_seek(stream: av.stream.Stream, target_ts: int, target: float, current: float | None, start: float) -> bool:
    """Tell whether to seek: only when the keyframe before the target lies beyond the decoded position.

    Args:
        stream: The stream being decoded.
        target_ts: The target in the stream's time base.
        target: The target in seconds from the stream start.
        current: Time (s) of the latest decoded frame, None before the first.
        start: Stream start time in seconds.

    Returns:
        True when seeking beats decoding forward; without a keyframe index, when
        the target is over :data:`SEEK_GAP_S` ahead.
    """
    position = 0.0 if current is None else current
    key = keyframe_ts(stream, target_ts)
    if key is None:
        return target - position > SEEK_GAP_S
    return float(key * stream.time_base) - start > position


class PacketStats:
    """Counts decoded and failed packets of one stream.

    Attributes:
        packets: Non-empty packets read.
        failed: Packets (or demuxer reads) that failed.
        last_error: Message of the latest failure.
    """

    def __init__(self) -> None:
        self.packets = 0
        self.failed = 0
        self.last_error = ""

    def too_many_failures(self) -> bool:
        """Tell whether the share of failed packets is over :data:`MAX_ERROR_RATIO`.

        Returns:
            True when the stream counts as corrupt.
        """
        return self.packets > 0 and self.failed / self.packets > MAX_ERROR_RATIO


def decoded_frames(
    container: av.container.InputContainer,
    stream: av.stream.Stream,
    stats: PacketStats,
    unwanted_before: list[int | None] | None = None,
) -> Iterator[av.frame.Frame]:
    """Yield decoded frames of ``stream``, skipping packets the decoder rejects.

    A demuxer error (truncated data) ends the iteration like end of file.

    Args:
        container: The open container.
        stream: The stream to decode.
        stats: Packet counters to update.
        unwanted_before: A one-item list holding a pts (stream time base), read
            at every packet, before which frames are not wanted: non-reference
            frames of packets before it are not decoded at all
            (``skip_frame="NONREF"``), which changes no other frame.

    Yields:
        The decoded frames in decoding order. PyAV demuxer and decoder errors
        are not raised but counted in ``stats``.
    """
    demux = container.demux(stream)
    codec = stream.codec_context
    skipping = False
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            return
        except AV_ERRORS as exc:
            stats.failed += 1
            stats.last_error = f"demuxing stopped: {exc}"
            packet = None
        if unwanted_before is not None:
            limit = unwanted_before[0]
            skip = packet is not None and packet.pts is not None and limit is not None and packet.pts < limit
            if skip != skipping:
                codec.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
        try:
            frames = stream.decode(packet)  # None flushes the decoder
        except AV_ERRORS as exc:
            stats.failed += 1
            stats.last_error = str(exc)
            frames = []
        if packet is not None and packet.size:
            stats.packets += 1
        yield from frames
        if packet is None:
            return


def frame_rotation_cw(frame: av.VideoFrame, fallback: int) -> int:
    """Clockwise degrees to rotate ``frame`` upright: its display matrix, else ``fallback``.

    Args:
        frame: A decoded frame (``frame.rotation`` is counter-clockwise).
        fallback: Clockwise rotation from the probe.

    Returns:
        0, 90, 180 or 270.
    """
    if frame.rotation:
        return int(round(-frame.rotation / 90.0)) * 90 % 360
    return fallback


def to_rgb(frame: av.VideoFrame, rotation: int, max_side: int) -> np.ndarray:
    """Convert to RGB, downscale so the long side is at most ``max_side``, rotate ``rotation`` degrees clockwise.

    Args:
        frame: A decoded video frame.
        rotation: Clockwise degrees (0, 90, 180 or 270).
        max_side: Longest side of the result (INTER_AREA downscale); 0 keeps the size.

    Returns:
        A contiguous RGB uint8 array of shape (H, W, 3).

    Raises:
        av.FFmpegError: The frame cannot be converted (also the other ``AV_ERRORS``).
        cv2.error: Resizing or rotating fails.
    """
    rgb = frame.to_ndarray(format="rgb24")
    height, width = rgb.shape[:2]
    if max_side and max_side > 0 and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if rotation in _CV_ROTATE:
        rgb = cv2.rotate(rgb, _CV_ROTATE[rotation])
    return np.ascontiguousarray(rgb)
