"""Decode sampled video frames and the audio track of a probed media file.

Frames are sampled by presentation time, not by frame index, so variable frame
rate files are handled: N target times are spread evenly over the video, and
for each target the decoder returns the first frame whose pts is at or after
it. It seeks (to the keyframe before a target) only when that keyframe lies
beyond what has already been decoded; otherwise it decodes forward. Frames
that are skipped are never converted to RGB, and non-reference frames before
a target are not decoded at all (``skip_frame="NONREF"``; this cannot change
any other frame).

PyAV 18 does not rotate decoded pictures. The display matrix is read per frame
(``VideoFrame.rotation``, counter-clockwise degrees) and falls back to
``MediaInfo.rotation`` (clockwise, from the probe); the frame is rotated once
with ``cv2.rotate``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any, Callable

import av
import av.container
import av.stream
import numpy as np

from tagging.errors import CorruptMedia, MediaError, NoDecodableStream
from tagging.media.container import (
    AV_ERRORS,
    DECODE_ERRORS,
    PacketStats,
    available_end,
    check_path,
    decoded_frames,
    frame_rotation_cw,
    frames_exist_until,
    open_input,
    select_streams,
    should_seek,
    stream_seconds,
    to_rgb,
)
from tagging.media.probe import probe
from tagging.media.types import DEFAULT_NUM_FRAMES, DecodedMedia, MediaInfo, MediaLimits

logger = logging.getLogger(__name__)

SKIP_NONREF = True
"""Do not decode non-reference frames that lie before the next target."""

_decoded = decoded_frames
"""The frame iterator the decoders call, looked up here at each call (tests wrap it)."""


def _seconds(frame: av.VideoFrame, start: float) -> float | None:
    """Presentation time of ``frame`` in seconds from ``start``, or None without a pts."""
    return None if frame.time is None else frame.time - start


class _FrameCursor:
    """Finds, for non-decreasing target times, the first frame with pts at or after each.

    Decodes forward and seeks (to the keyframe before a target) only when that
    keyframe lies beyond what has been decoded. Non-reference frames before a
    target are not decoded when ``SKIP_NONREF`` and the target is below ``skip_end``.

    Attributes:
        start: Stream start time in seconds.
        stats: Packet counters of the video stream.
    """

    def __init__(
        self, container: av.container.InputContainer, stream: av.stream.Stream, info: MediaInfo, skip_end: float
    ) -> None:
        self._container = container
        self._stream = stream
        self._info = info
        self._skip_end = skip_end
        self.start = float((stream.start_time or 0) * stream.time_base)
        self.stats = PacketStats()
        self._skip_before: list[int | None] = [None]
        self._frames: Iterator[av.VideoFrame] | None = None
        self._pending: av.VideoFrame | None = None  # first frame at/after the previous target
        self._last: av.VideoFrame | None = None  # latest frame decoded

    def frame_at(self, target: float) -> av.VideoFrame | None:
        """Return the frame for ``target`` (s): the last frame when the stream ends first, None when it has none."""
        if self._pending is not None and (_seconds(self._pending, self.start) or 0.0) >= target:
            return self._pending
        target_ts = int((target + self.start) / self._stream.time_base)
        self._seek_if_ahead(target, target_ts)
        if self._frames is None:
            self._frames = _decoded(self._container, self._stream, self.stats, self._skip_before)
        self._skip_before[0] = target_ts if SKIP_NONREF and target <= self._skip_end else None
        chosen = None
        for frame in self._frames:
            self._last = frame
            t = _seconds(frame, self.start)
            if t is None or t >= target:
                chosen = frame
                break
        if chosen is None:
            chosen = self._last
        self._pending = chosen
        return chosen

    def _seek_if_ahead(self, target: float, target_ts: int) -> None:
        """Seek backward to ``target_ts`` when :func:`should_seek` says so; a failed seek is only logged."""
        current = _seconds(self._last, self.start) if self._last is not None else None
        if not should_seek(self._stream, target_ts, target, current, self.start):
            return
        try:
            self._container.seek(target_ts, stream=self._stream, backward=True)
            self._frames = None
        except AV_ERRORS as exc:  # keep decoding forward instead
            logger.debug("%s: seek to %.3f s failed: %s", self._info.path, target, exc)


def _video_span(stream: av.stream.Stream, info: MediaInfo) -> tuple[float, float | None, list[str]]:
    """Seconds of video to sample over, the end of the data of a truncated file (or None), and problems."""
    problems: list[str] = []
    span = stream_seconds(stream) or info.duration_s
    available = available_end(stream, info.size_bytes)
    if available is not None:
        problems.append(f"file is truncated: video data ends at {available:.2f} s of {span:.2f} s")
        span = available
    if span <= 0:
        span = info.duration_s
    return span, available, problems


def _collect(cursor: _FrameCursor, targets: list[float], info: MediaInfo, max_side: int) -> tuple[list[np.ndarray], list[float]]:
    """Upright RGB frames and their non-decreasing times for ``targets`` (fewer when the stream has none).

    Raises:
        av.FFmpegError: Decoding or conversion fails (also the other ``AV_ERRORS``).
        cv2.error: Resizing or rotating fails.
    """
    out: list[np.ndarray] = []
    times: list[float] = []
    rotation_warned = False
    for target in targets:
        chosen = cursor.frame_at(target)
        if chosen is None:
            break
        t = _seconds(chosen, cursor.start) or 0.0
        if times and t < times[-1]:  # never go back in time (after a backward seek at end of file)
            t, chosen = times[-1], None
        if chosen is None:
            out.append(out[-1].copy())
        else:
            rotation = frame_rotation_cw(chosen, info.rotation)
            if rotation != info.rotation and not rotation_warned:
                rotation_warned = True
                msg = "%s: frame rotation %d differs from probed %d; using the frame's"
                logger.warning(msg, info.path, rotation, info.rotation)
            out.append(to_rgb(chosen, rotation, max_side))
        times.append(t)
    return out, times


def _sample(
    container: av.container.InputContainer, info: MediaInfo, num_frames: int, max_side: int
) -> tuple[list[np.ndarray], list[float], list[str], float | None]:
    """Sample frames from an open container: frames, times, non-fatal problems, end of a truncated file's data.

    Raises:
        CorruptMedia: No frame decodes, or most video packets are undecodable.
        av.FFmpegError: Decoding or conversion fails (also the other ``AV_ERRORS``).
        cv2.error: Resizing or rotating fails.
    """
    stream, _ = select_streams(container)
    if stream is None or num_frames <= 0:
        return [], [], [], None
    stream.codec_context.thread_type = "AUTO"
    span, available, problems = _video_span(stream, info)
    targets = [(i + 0.5) * span / num_frames for i in range(num_frames)]
    skip_end = frames_exist_until(stream, span, info.fps) if available is None else available
    cursor = _FrameCursor(container, stream, info, skip_end)
    out, times = _collect(cursor, targets, info, max_side)
    stats = cursor.stats
    if stats.failed:
        problems.append(f"{stats.failed} of {stats.packets} video packets failed to decode ({stats.last_error})")
    if not out:
        reason = "no video frame could be decoded"
        raise CorruptMedia(info.path, f"{reason}: {'; '.join(problems)}" if problems else reason)
    if stats.too_many_failures():
        raise CorruptMedia(info.path, problems[-1])
    return out, times, problems, available


def sample_frames(
    path: str | os.PathLike, info: MediaInfo, num_frames: int = DEFAULT_NUM_FRAMES, max_side: int = 320
) -> tuple[list[np.ndarray], list[float]]:
    """Decode ``num_frames`` frames spread evenly in time over the video.

    Target times are the centres of ``num_frames`` equal segments of the video
    duration; each returned frame is the first one with pts at or after its
    target (the last frame when the stream ends first), so with fewer frames
    than targets a frame may repeat.

    Args:
        path: The media file.
        info: Its probe result.
        num_frames: How many frames to return.
        max_side: Longest side of the returned frames (INTER_AREA downscale); 0 keeps the size.

    Returns:
        (frames, timestamps): upright RGB uint8 arrays of shape (H, W, 3) and the
        presentation time in seconds (from the stream start) of each, non-decreasing.
        Both are empty when the file has no video stream.

    Raises:
        MediaNotFound: The file is missing.
        VideoOpenFailure: The file cannot be opened.
        CorruptMedia: No frame decodes, or most video packets are undecodable.
    """
    frames, times, problems, _ = _sample_open(path, info, num_frames, max_side)
    for problem in problems:
        logger.warning("%s: %s", info.path, problem)
    return frames, times


def _sample_open(
    path: str | os.PathLike, info: MediaInfo, num_frames: int, max_side: int
) -> tuple[list[np.ndarray], list[float], list[str], float | None]:
    """Open the file and sample its frames: as :func:`_sample`.

    Raises:
        MediaNotFound: The file is missing.
        VideoOpenFailure: The file cannot be opened.
        CorruptMedia: Decoding fails, no frame decodes, or most video packets are undecodable.
    """
    if not info.has_video:
        return [], [], [], None
    p, _ = check_path(path)
    container = open_input(p)
    try:
        return _sample(container, info, num_frames, max_side)
    except DECODE_ERRORS as exc:
        raise CorruptMedia(str(p), f"video decoding failed ({type(exc).__name__}: {exc})") from None
    finally:
        container.close()


def load_audio(
    path: str | os.PathLike, info: MediaInfo, sample_rate: int = 16000, max_seconds: float | None = None
) -> np.ndarray | None:
    """Decode the audio track to mono float32 at ``sample_rate``.

    Args:
        path: The media file.
        info: Its probe result.
        sample_rate: Output sample rate in Hz.
        max_seconds: Stop after this many seconds of audio; None decodes all of it.

    Returns:
        Samples in [-1, 1] as a 1-D float32 array, or None when the file has no audio stream.

    Raises:
        MediaNotFound: The file is missing.
        VideoOpenFailure: The file cannot be opened.
        CorruptMedia: No audio decodes, or most audio packets are undecodable.
    """
    audio, problems, _ = _audio_open(path, info, sample_rate, max_seconds)
    for problem in problems:
        logger.warning("%s: %s", info.path, problem)
    return audio


def _audio_open(
    path: str | os.PathLike, info: MediaInfo, sample_rate: int, max_seconds: float | None
) -> tuple[np.ndarray | None, list[str], float | None]:
    """Open the file and decode its audio: as :func:`_audio`.

    Raises:
        MediaNotFound: The file is missing.
        VideoOpenFailure: The file cannot be opened.
        CorruptMedia: Decoding fails, no audio decodes, or most audio packets are undecodable.
    """
    if not info.has_audio:
        return None, [], None
    p, _ = check_path(path)
    container = open_input(p)
    try:
        return _audio(container, info, sample_rate, max_seconds)
    except DECODE_ERRORS as exc:
        raise CorruptMedia(str(p), f"audio decoding failed ({type(exc).__name__}: {exc})") from None
    finally:
        container.close()


def _audio(
    container: av.container.InputContainer, info: MediaInfo, sample_rate: int, max_seconds: float | None
) -> tuple[np.ndarray | None, list[str], float | None]:
    """Decode the audio of an open container to mono float32 (None without one): problems, seconds of a truncated file.

    Raises:
        CorruptMedia: No audio decodes, or most audio packets are undecodable.
        av.FFmpegError: Resampling fails (also the other ``AV_ERRORS``).
    """
    _, stream = select_streams(container)
    if stream is None:
        return None, [], None
    limit = None if max_seconds is None else max(0, int(round(max_seconds * sample_rate)))
    problems = []
    available = available_end(stream, info.size_bytes)
    if available is not None:
        problems.append(f"file is truncated: audio data ends at {available:.2f} s of {stream_seconds(stream):.2f} s")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    stats = PacketStats()
    chunks: list[np.ndarray] = []
    total = 0
    for frame in _decoded(container, stream, stats):
        frame.pts = None  # let the resampler keep its own clock across gaps
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
            total += chunks[-1].size
        if limit is not None and total >= limit:
            break
    else:
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    if limit is not None:
        audio = audio[:limit]
    if stats.failed:
        problems.append(f"{stats.failed} of {stats.packets} audio packets failed to decode ({stats.last_error})")
    if audio.size == 0 and stats.failed:
        raise CorruptMedia(info.path, f"no audio could be decoded: {problems[-1]}")
    if stats.too_many_failures():
        raise CorruptMedia(info.path, problems[-1])
    extent = audio.size / sample_rate if available is not None else None
    return np.clip(audio, -1.0, 1.0), problems, extent


def _modality(result: DecodedMedia, kind: str, run: Callable[[], tuple[Any, ...]]) -> float | None:
    """Decode one modality into ``result`` (a failure goes to ``result.errors``); its truncated extent or None."""
    try:
        *decoded, problems, end = run()
    except MediaError as exc:
        result.errors[kind], end, problems, decoded = exc.reason, None, [], None
    if decoded is not None and kind == "video":
        result.frames, result.timestamps = decoded
    elif decoded is not None:
        result.audio = decoded[0]
    result.errors.update({kind: "; ".join(problems)} if problems else {})
    return end


def decode(
    path: str | os.PathLike,
    limits: MediaLimits | None = None,
    num_frames: int = DEFAULT_NUM_FRAMES,
    max_side: int = 320,
    sample_rate: int = 16000,
    info: MediaInfo | None = None,
) -> DecodedMedia:
    """Probe a file, then decode sampled frames and the audio track.

    A modality that fails to decode does not stop the other: its error message
    goes to ``DecodedMedia.errors`` (``"video"`` or ``"audio"``) and it is left
    empty (``frames=[]`` or ``audio=None``). Non-fatal problems of a modality
    that did decode (e.g. a truncated file: ``truncated_at``, its real extent) are recorded there too.

    Args:
        path: The media file.
        limits: Limits checked by the probe before decoding.
        info: The file's probe result when the caller already has it (the probe is then skipped).
        num_frames: Number of frames to sample.
        max_side: Longest side of the frames.
        sample_rate: Audio sample rate.

    Returns:
        The decoded media.

    Raises:
        MediaNotFound: The path is missing or not a regular file.
        VideoOpenFailure: Empty file or not a media container.
        NoDecodableStream: The file has no audio or video stream.
        LimitExceeded: The file is over ``limits``.
        CorruptMedia: Neither video nor audio could be decoded.
    """
    info = info if info is not None else probe(path, limits)
    result = DecodedMedia(info=info, sample_rate=sample_rate)
    video = _modality(result, "video", lambda: _sample_open(path, info, num_frames, max_side)) if info.has_video else None
    audio = _modality(result, "audio", lambda: _audio_open(path, info, sample_rate, None)) if info.has_audio else None
    extents = [e for e in (video, audio) if e is not None]  # where the data of a truncated file ends
    result.truncated_at = round(max(extents), 3) if extents else None
    for kind, message in result.errors.items():
        logger.warning("%s: %s: %s", info.path, kind, message)
    if not result.frames and result.audio is None:
        if not result.errors:
            raise NoDecodableStream(info.path, "nothing to decode")
        raise CorruptMedia(info.path, "; ".join(f"{k}: {v}" for k, v in result.errors.items()))
    return result
