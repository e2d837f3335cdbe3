"""Plain data types shared by the media layer and its callers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_NUM_FRAMES = 6  # frames sampled per video (the ingest budget); one default for every caller


@dataclass
class MediaLimits:
    """Limits checked on the probe, before a single frame is decoded.

    Attributes:
        max_file_bytes: Largest accepted file size in bytes.
        max_duration_s: Longest accepted duration in seconds.
        max_pixels: Largest accepted width * height of the video stream.
        max_fps: Highest accepted average frame rate.
        max_frames: Largest accepted (estimated) frame count.
    """

    max_file_bytes: int = 2 * 1024**3
    max_duration_s: float = 15 * 60.0
    max_pixels: int = 3840 * 2160
    max_fps: float = 240.0
    max_frames: int = 15 * 60 * 240


@dataclass
class MediaInfo:
    """What the probe learnt about a file without decoding it.

    Attributes:
        path: The file path.
        container: Container format name as PyAV reports it (e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``).
        size_bytes: File size.
        duration_s: Duration in seconds (container or longest stream).
        has_video: True when a decodable video stream exists.
        has_audio: True when a decodable audio stream exists.
        width: Display width after rotation (0 when no video).
        height: Display height after rotation (0 when no video).
        fps: Average frame rate (0.0 when unknown or no video).
        frame_count: Frame count from the stream header or duration * fps estimate.
        rotation: Clockwise rotation in degrees (0, 90, 180, 270) needed to show the video upright.
        video_codec: Codec name of the video stream, or None.
        audio_codec: Codec name of the audio stream, or None.
        audio_sample_rate: Native audio sample rate, or 0.
        audio_channels: Native audio channel count, or 0.
    """

    path: str
    container: str
    size_bytes: int
    duration_s: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    frame_count: int = 0
    rotation: int = 0
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_sample_rate: int = 0
    audio_channels: int = 0

    def to_dict(self) -> dict:
        """Return the info as a JSON-friendly dict."""
        return dict(self.__dict__)


@dataclass
class DecodedMedia:
    """The decoded content of one file: sampled frames and the audio track.

    Attributes:
        info: The probe result.
        frames: Sampled frames, upright, RGB uint8 arrays of shape (H, W, 3).
        timestamps: Presentation time in seconds of each sampled frame.
        audio: Mono float32 samples in [-1, 1] at ``sample_rate``, or None when the file has no audio.
        sample_rate: Sample rate of ``audio``.
        errors: Per-modality decode errors that did not stop the others, e.g. ``{"audio": "..."}``.
            A modality whose key is present either failed (``frames == []`` or
            ``audio is None``) or decoded only partly (e.g. a truncated file: the
            frames/audio that exist are returned and the key says what is missing).
        truncated_at: For a file whose data ends before its header's duration, the seconds
            that really decode (the longest of its streams); None for a whole file.
    """

    info: MediaInfo
    frames: list[np.ndarray] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    audio: np.ndarray | None = None
    sample_rate: int = 16000
    errors: dict[str, str] = field(default_factory=dict)
    truncated_at: float | None = None
