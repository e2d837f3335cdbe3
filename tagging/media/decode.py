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

import av
import av.container
import av.stream
import cv2
import numpy as np

from tagging.errors import CorruptMedia, MediaError, NoDecodableStream
from tagging.media.probe import (
    AV_ERRORS,
    available_end,
    check_path,
    frames_exist_until,
    keyframe_ts,
    open_input,
    probe,
    select_streams,
    stream_seconds,
)
from tagging.media.types import DecodedMedia, MediaInfo, MediaLimits

log = logging.getLogger(__name__)

SEEK_GAP_S = 2.0
"""Without a keyframe index, seek only when the next target is this far ahead."""

SKIP_NONREF = True
"""Do not decode non-reference frames that lie before the next target."""

MAX_ERROR_RATIO = 0.5
"""A stream whose share of undecodable packets is above this counts as corrupt."""

_CV_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
_DECODE_ERRORS = (*AV_ERRORS, cv2.error)


class _PacketStats:
    """Counts decoded and failed packets of one stream."""

    def __init__(self) -> None:
        self.packets = 0
        self.failed = 0
        self.last_error = ""

    def too_many_failures(self) -> bool:
        return self.packets > 0 and self.failed / self.packets > MAX_ERROR_RATIO


def _decoded(
    container: av.container.InputContainer,
    stream: av.stream.Stream,
    stats: _PacketStats,
    unwanted_before: list[int | None] | None = None,
) -> Iterator:
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


def _seconds(frame: av.VideoFrame, start: float) -> float | None:
    return None if frame.time is None else frame.time - start


def _rotation_cw(frame: av.VideoFrame, info: MediaInfo) -> int:
    """Clockwise degrees to rotate ``frame`` upright: the frame's display matrix, else the probe's."""
    if frame.rotation:
        return int(round(-frame.rotation / 90.0)) * 90 % 360
    return info.rotation


def _to_rgb(frame: av.VideoFrame, rotation: int, max_side: int) -> np.ndarray:
    """Convert to RGB, downscale so the long side is at most ``max_side``, rotate ``rotation`` degrees clockwise."""
    rgb = frame.to_ndarray(format="rgb24")
    height, width = rgb.shape[:2]
    if max_side and max_side > 0 and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if rotation in _CV_ROTATE:
        rgb = cv2.rotate(rgb, _CV_ROTATE[rotation])
    return np.ascontiguousarray(rgb)


def _should_seek(stream: av.stream.Stream, target_ts: int, target: float, current: float | None, start: float) -> bool:
    """Seek only when the keyframe before the target lies beyond the decoded position.

    ``current`` is the time of the latest decoded frame (None before the first);
    without a keyframe index, seek when the target is over ``SEEK_GAP_S`` ahead.
    """
    position = 0.0 if current is None else current
    key = keyframe_ts(stream, target_ts)
    if key is None:
        return target - position > SEEK_GAP_S
    return float(key * stream.time_base) - start > position


def _sample(
    container: av.container.InputContainer, info: MediaInfo, num_frames: int, max_side: int
) -> tuple[list[np.ndarray], list[float], list[str]]:
    """Sample frames from an open container; returns frames, times and non-fatal problems."""
    stream, _ = select_streams(container)
    if stream is None or num_frames <= 0:
        return [], [], []
    stream.codec_context.thread_type = "AUTO"
    tb = stream.time_base
    start = float((stream.start_time or 0) * tb)
    problems: list[str] = []
    span = stream_seconds(stream) or info.duration_s
    available = available_end(stream, info.size_bytes)
    if available is not None:
        problems.append(f"file is truncated: video data ends at {available:.2f} s of {span:.2f} s")
        span = available
    if span <= 0:
        span = info.duration_s
    targets = [(i + 0.5) * span / num_frames for i in range(num_frames)]

    stats = _PacketStats()
    skip_end = frames_exist_until(stream, span, info.fps) if available is None else available
    skip_before: list[int | None] = [None]
    frames: Iterator | None = None
    pending: av.VideoFrame | None = None  # first frame at/after the previous target
    last: av.VideoFrame | None = None  # latest frame decoded
    out: list[np.ndarray] = []
    times: list[float] = []
    rotation_warned = False
    for target in targets:
        if pending is not None and (_seconds(pending, start) or 0.0) >= target:
            chosen = pending
        else:
            current = _seconds(last, start) if last is not None else None
            target_ts = int((target + start) / tb)
            if _should_seek(stream, target_ts, target, current, start):
                try:
                    container.seek(target_ts, stream=stream, backward=True)
                    frames = None
                except AV_ERRORS as exc:  # keep decoding forward instead
                    log.debug("%s: seek to %.3f s failed: %s", info.path, target, exc)
            if frames is None:
                frames = _decoded(container, stream, stats, skip_before)
            skip_before[0] = target_ts if SKIP_NONREF and target <= skip_end else None
            chosen = None
            for frame in frames:
                last = frame
                t = _seconds(frame, start)
                if t is None or t >= target:
                    chosen = frame
                    break
            if chosen is None:
                chosen = last
            pending = chosen
        if chosen is None:
            break
        t = _seconds(chosen, start) or 0.0
        if times and t < times[-1]:  # never go back in time (after a backward seek at end of file)
            t, chosen = times[-1], None
        if chosen is None:
            out.append(out[-1].copy())
        else:
            rotation = _rotation_cw(chosen, info)
            if rotation != info.rotation and not rotation_warned:
                rotation_warned = True
                msg = "%s: frame rotation %d differs from probed %d; using the frame's"
                log.warning(msg, info.path, rotation, info.rotation)
            out.append(_to_rgb(chosen, rotation, max_side))
        times.append(t)
    if stats.failed:
        problems.append(f"{stats.failed} of {stats.packets} video packets failed to decode ({stats.last_error})")
    if not out:
        reason = "no video frame could be decoded"
        raise CorruptMedia(info.path, f"{reason}: {'; '.join(problems)}" if problems else reason)
    if stats.too_many_failures():
        raise CorruptMedia(info.path, problems[-1])
    return out, times, problems


def sample_frames(
    path: str | os.PathLike, info: MediaInfo, num_frames: int = 8, max_side: int = 320
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
    frames, times, problems = _sample_open(path, info, num_frames, max_side)
    for problem in problems:
        log.warning("%s: %s", info.path, problem)
    return frames, times


def _sample_open(
    path: str | os.PathLike, info: MediaInfo, num_frames: int, max_side: int
) -> tuple[list[np.ndarray], list[float], list[str]]:
    if not info.has_video:
        return [], [], []
    p, _ = check_path(path)
    container = open_input(p)
    try:
        return _sample(container, info, num_frames, max_side)
    except _DECODE_ERRORS as exc:
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
    audio, problems = _audio_open(path, info, sample_rate, max_seconds)
    for problem in problems:
        log.warning("%s: %s", info.path, problem)
    return audio


def _audio_open(
    path: str | os.PathLike, info: MediaInfo, sample_rate: int, max_seconds: float | None
) -> tuple[np.ndarray | None, list[str]]:
    if not info.has_audio:
        return None, []
    p, _ = check_path(path)
    container = open_input(p)
    try:
        return _audio(container, info, sample_rate, max_seconds)
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(str(p), f"audio decoding failed ({type(exc).__name__}: {exc})") from None
    finally:
        container.close()


def _audio(
    container: av.container.InputContainer, info: MediaInfo, sample_rate: int, max_seconds: float | None
) -> tuple[np.ndarray | None, list[str]]:
    _, stream = select_streams(container)
    if stream is None:
        return None, []
    limit = None if max_seconds is None else max(0, int(round(max_seconds * sample_rate)))
    problems = []
    available = available_end(stream, info.size_bytes)
    if available is not None:
        problems.append(f"file is truncated: audio data ends at {available:.2f} s of {stream_seconds(stream):.2f} s")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    stats = _PacketStats()
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
    return np.clip(audio, -1.0, 1.0), problems


def decode(
    path: str | os.PathLike,
    limits: MediaLimits | None = None,
    num_frames: int = 8,
    max_side: int = 320,
    sample_rate: int = 16000,
    info: MediaInfo | None = None,
) -> DecodedMedia:
    """Probe a file, then decode sampled frames and the audio track.

    A modality that fails to decode does not stop the other: its error message
    goes to ``DecodedMedia.errors`` (``"video"`` or ``"audio"``) and it is left
    empty (``frames=[]`` or ``audio=None``). Non-fatal problems of a modality
    that did decode (e.g. a truncated file) are recorded there too.

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
    if info.has_video:
        try:
            result.frames, result.timestamps, problems = _sample_open(path, info, num_frames, max_side)
            if problems:
                result.errors["video"] = "; ".join(problems)
        except MediaError as exc:
            result.errors["video"] = exc.reason
    if info.has_audio:
        try:
            result.audio, problems = _audio_open(path, info, sample_rate, None)
            if problems:
                result.errors["audio"] = "; ".join(problems)
        except MediaError as exc:
            result.errors["audio"] = exc.reason
    for kind, message in result.errors.items():
        log.warning("%s: %s: %s", info.path, kind, message)
    if not result.frames and result.audio is None:
        if not result.errors:
            raise NoDecodableStream(info.path, "nothing to decode")
        raise CorruptMedia(info.path, "; ".join(f"{k}: {v}" for k, v in result.errors.items()))
    return result
