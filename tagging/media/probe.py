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
import stat
import struct
from pathlib import Path
from typing import BinaryIO

import av
import av.container
import av.stream

from tagging.errors import CorruptMedia, LimitExceeded, MediaNotFound, NoDecodableStream, VideoOpenFailure
from tagging.media.types import MediaInfo, MediaLimits

log = logging.getLogger(__name__)

AV_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, OSError, ValueError, RuntimeError, EOFError)
"""Exceptions PyAV raises on bad input; callers wrap them in a typed MediaError."""

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
_ISOBMFF_NAMES = ("mov", "mp4", "m4a", "3gp")
# Demuxers that accept any bytes by file extension and render them as text-mode art
# (e.g. "notes.txt" opens as a "tty" video); such files are not uploads we can tag.
_TEXT_ART_FORMATS = frozenset({"tty", "bin", "adf", "idf", "xbin"})
_MAX_MOOV_BYTES = 64 * 1024 * 1024


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
    """True when the first bytes of ``path`` match a known container signature."""
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
            raise CorruptMedia(str(path), f"container header is damaged or truncated ({_brief(exc)})") from None
        raise VideoOpenFailure(str(path), f"not a media container PyAV can open ({_brief(exc)})") from None
    if container.format.name in _TEXT_ART_FORMATS:
        container.close()
        raise VideoOpenFailure(str(path), f"not a media container (opened only as text art, {container.format.name!r})")
    return container


def _brief(exc: BaseException) -> str:
    """One-line description of a PyAV error without the repeated file name."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _usable(stream: av.stream.Stream) -> bool:
    """True for a stream with a decoder that is not an attached cover picture."""
    if stream.codec_context is None:
        return False
    return not (stream.disposition & av.stream.Disposition.attached_pic)


def select_streams(container: av.container.InputContainer) -> tuple[av.stream.Stream | None, av.stream.Stream | None]:
    """Return the (video, audio) streams to decode, either possibly None.

    Video: the usable stream with the most pixels. Audio: the first usable one,
    preferring one flagged as default.
    """
    videos = [s for s in container.streams.video if _usable(s)]
    audios = [s for s in container.streams.audio if _usable(s)]
    video = max(videos, key=lambda s: (s.width or 0) * (s.height or 0), default=None)
    audio = next((s for s in audios if s.disposition & av.stream.Disposition.default), audios[0] if audios else None)
    return video, audio


def stream_seconds(stream: av.stream.Stream) -> float:
    """Stream duration in seconds from its header, or 0.0 when unknown."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def _container_seconds(container: av.container.InputContainer, streams: list[av.stream.Stream]) -> float:
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return max((stream_seconds(s) for s in streams), default=0.0)


def _frame_rate(stream: av.stream.Stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def _snap_rotation(degrees: float) -> int:
    """Round a clockwise angle to 0/90/180/270."""
    return int(round(degrees / 90.0)) * 90 % 360


def read_rotation(path: Path, container: av.container.InputContainer, stream: av.stream.Stream) -> int:
    """Clockwise rotation (0/90/180/270) needed to show ``stream`` upright, read from headers."""
    tag = stream.metadata.get("rotate")
    if tag:
        try:
            return _snap_rotation(float(tag))
        except ValueError:
            log.warning("%s: ignoring unparsable rotate tag %r", path, tag)
    if any(name in container.format.name for name in _ISOBMFF_NAMES):
        try:
            matrix = _mp4_video_matrix(path, stream.index)
        except (OSError, struct.error, ValueError) as exc:
            log.debug("%s: could not read tkhd matrix: %s", path, exc)
            matrix = None
        if matrix is not None:
            a, b, c, d = matrix
            if a * d - b * c < 0:
                log.warning("%s: display matrix mirrors the picture; only its rotation is applied", path)
            return _snap_rotation(math.degrees(math.atan2(b, a)))
    return 0


def _boxes(fh: BinaryIO, start: int, end: int):
    """Yield (type, payload_start, payload_end) of the ISO-BMFF boxes in [start, end)."""
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
    """Return (a, b, c, d) of the tkhd matrix of the video track matching ``stream_index``."""
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


def available_end(stream: av.stream.Stream, file_size: int) -> float | None:
    """Time (s) of the last indexed packet that lies inside the file, when some lie beyond it."""
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
    """A time (s) up to which a frame at or after any target surely exists.

    The last indexed packet's dts is a lower bound of the largest pts. Skipping
    frames before a target is only safe below it: beyond, the last frame
    decoded is the fallback and must not have been skipped.
    """
    entries = stream.index_entries
    if len(entries) >= 2 and stream.time_base:
        return float((entries[len(entries) - 1].timestamp - (stream.start_time or 0)) * stream.time_base)
    return span - 2.0 / (fps if fps > 0 else 10.0)


def keyframe_ts(stream: av.stream.Stream, ts: int) -> int | None:
    """Timestamp of the indexed keyframe at or before ``ts``, or None without an index."""
    entries = stream.index_entries
    if len(entries) < 2:  # e.g. Matroska before its cues are read: no usable index yet
        return None
    try:
        i = entries.search_timestamp(ts, backward=True)
    except AV_ERRORS:
        return None
    return entries[i].timestamp if i >= 0 else None


def _check_limits(info: MediaInfo, limits: MediaLimits, coded_pixels: int) -> None:
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
    return str(value) if isinstance(value, int) else f"{value:.6g}"


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
        video, audio = select_streams(container)
        if video is None and audio is None:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise NoDecodableStream(str(p), f"no decodable audio or video stream (streams: {', '.join(kinds)})")
        used = [s for s in (video, audio) if s is not None]
        info = MediaInfo(
            path=str(p),
            container=container.format.name,
            size_bytes=size,
            duration_s=_container_seconds(container, used),
            has_video=video is not None,
            has_audio=audio is not None,
        )
        coded_pixels = 0
        if video is not None:
            info.video_codec = video.codec_context.name
            info.fps = _frame_rate(video)
            seconds = stream_seconds(video) or info.duration_s
            info.frame_count = int(video.frames) if video.frames else int(round(seconds * info.fps))
            info.rotation = read_rotation(p, container, video)
            w, h = int(video.width or 0), int(video.height or 0)
            coded_pixels = w * h
            info.width, info.height = (h, w) if info.rotation in (90, 270) else (w, h)
        if audio is not None:
            info.audio_codec = audio.codec_context.name
            info.audio_sample_rate = int(audio.codec_context.sample_rate or 0)
            info.audio_channels = int(audio.codec_context.channels or 0)
    except AV_ERRORS as exc:
        raise CorruptMedia(str(p), f"cannot read stream headers ({_brief(exc)})") from None
    finally:
        container.close()
    if info.duration_s <= 0:
        log.warning("%s: duration unknown; the duration limit cannot be checked", p)
    _check_limits(info, limits, coded_pixels)
    log.debug("probed %s: %s", p, info)
    return info
