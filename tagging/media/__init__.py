"""Media layer: probe a file first, decode second.

>>> from tagging.media import probe, decode
>>> info = probe("clip.mp4")            # headers and limits only, no decoding
>>> media = decode("clip.mp4")          # probe + 8 sampled frames + 16 kHz mono audio

Every failure is a :class:`tagging.errors.MediaError` subclass naming the file
and the reason; raw PyAV/OpenCV exceptions never escape.
"""

from __future__ import annotations

from tagging.media.decode import decode, load_audio, sample_frames
from tagging.media.probe import probe
from tagging.media.types import DecodedMedia, MediaInfo, MediaLimits

__all__ = ["DecodedMedia", "MediaInfo", "MediaLimits", "decode", "load_audio", "probe", "sample_frames"]
