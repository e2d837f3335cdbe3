"""Tests of the media layer: probe first, decode second."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tagging.errors import (
    CorruptMedia,
    LimitExceeded,
    MediaError,
    MediaNotFound,
    NoDecodableStream,
    VideoOpenFailure,
)
from tagging.media import DecodedMedia, MediaInfo, MediaLimits, decode, load_audio, probe, sample_frames

try:
    from tests import media_factory as mf
except ImportError:  # tests/ is on sys.path but the repository root is not
    import media_factory as mf  # type: ignore[no-redef]

decode_module = sys.modules["tagging.media.decode"]  # the attribute tagging.media.decode is the function


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generate every test file once for the module."""
    d = tmp_path_factory.mktemp("media")
    files = {
        "av": mf.make_video(d / "av.mp4", seconds=2.0, fps=15),
        "faststart": mf.make_video(d / "faststart.mp4", seconds=3.0, fps=15, faststart=True),
        "video_only": mf.make_video_only(d / "video_only.mp4", seconds=1.0),
        "m4a": mf.make_audio_only(d / "audio.m4a", seconds=1.5, channels=2),
        "wav": mf.make_audio_only(d / "audio.wav", seconds=1.5, channels=2, kind="noise"),
        "vfr": mf.make_vfr_video(d / "vfr.mp4"),
        "mkv": mf.make_video(d / "clip.mkv", seconds=3.0, gop=10),
        "long": mf.make_video_only(d / "long.mp4", seconds=6.0, fps=15, gop=15),
        "bframes": mf.make_video_only(d / "bframes.mp4", seconds=4.0, fps=15, gop=30, preset="veryfast"),
        "subtitle": mf.make_subtitle_only(d / "subs.srt"),
        "bad_audio": mf.make_corrupt_audio_video(d / "bad_audio.mp4", seconds=1.0),
        "bad_video": mf.make_corrupt_video_audio(d / "bad_video.mp4", seconds=1.0),
        "random": mf.random_bytes(d / "random.mp4", 5000),
        "empty": mf.empty(d / "empty.mp4"),
        "text": d / "notes.txt",  # FFmpeg's "tty" demuxer would open it as a video
        "random_bin": mf.random_bytes(d / "random.bin", 50000),  # ... and "bin" this one
    }
    files["text"].write_text("not a video\n" * 50)
    for rotation in (90, 180, 270):
        files[f"rot{rotation}"] = mf.make_rotated_video(
            d / f"rot{rotation}.mp4", rotation=rotation, seconds=1.0, size=(160, 96), with_audio=False
        )
    return files


# ----------------------------------------------------------------------------- probe


def test_probe_normal_file(media: dict[str, Path]) -> None:
    info = probe(media["av"])
    assert isinstance(info, MediaInfo)
    assert info.path == str(media["av"])
    assert "mp4" in info.container
    assert info.size_bytes == media["av"].stat().st_size
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(15.0)
    assert info.frame_count == 30
    assert info.rotation == 0
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"
    assert info.audio_sample_rate == 22050
    assert info.audio_channels == 1
    assert info.to_dict()["width"] == 160


def test_probe_audio_only(media: dict[str, Path]) -> None:
    for key, codec in (("m4a", "aac"), ("wav", "pcm_s16le")):
        info = probe(media[key])
        assert info.has_audio and not info.has_video
        assert (info.width, info.height, info.fps, info.video_codec) == (0, 0, 0.0, None)
        assert info.audio_codec == codec
        assert info.audio_channels == 2
        assert info.duration_s == pytest.approx(1.5, abs=0.1)


def test_probe_video_only(media: dict[str, Path]) -> None:
    info = probe(media["video_only"])
    assert info.has_video and not info.has_audio
    assert info.audio_codec is None and info.audio_sample_rate == 0


# ----------------------------------------------------------------------------- frames


def test_decode_normal_file(media: dict[str, Path]) -> None:
    result = decode(media["av"], num_frames=4, max_side=80)
    assert isinstance(result, DecodedMedia)
    assert result.errors == {}
    assert len(result.frames) == len(result.timestamps) == 4
    for frame in result.frames:
        assert frame.dtype == np.uint8 and frame.shape == (60, 80, 3)
        assert mf.is_upright(frame)
    # targets are segment centres 0.25, 0.75, 1.25, 1.75 s -> first frame at/after each (15 fps)
    assert [mf.read_frame_index(f) for f in result.frames] == [4, 12, 19, 27]
    assert result.timestamps == pytest.approx([4 / 15, 12 / 15, 19 / 15, 27 / 15], abs=1e-3)


def test_sample_frames_keeps_size_below_max_side(media: dict[str, Path]) -> None:
    info = probe(media["av"])
    frames, _ = sample_frames(media["av"], info, num_frames=2, max_side=1000)
    assert frames[0].shape == (120, 160, 3)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_file_comes_out_upright(media: dict[str, Path], rotation: int) -> None:
    info = probe(media[f"rot{rotation}"])
    assert info.rotation == rotation
    assert (info.width, info.height) == (160, 96)  # display dims; coded dims are 96x160 for 90/270
    frames, _ = sample_frames(media[f"rot{rotation}"], info, num_frames=3, max_side=80)
    for frame in frames:
        assert frame.shape == (48, 80, 3)
        assert mf.is_upright(frame), f"rotation {rotation} not undone"


def test_vfr_frames_at_right_timestamps(media: dict[str, Path]) -> None:
    info = probe(media["vfr"])
    pts = [ms / 1000 for ms in mf.DEFAULT_VFR_PTS_MS]
    n = 8
    frames, times = sample_frames(media["vfr"], info, num_frames=n)
    span = info.duration_s
    assert len(frames) == n
    for i, (frame, t) in enumerate(zip(frames, times)):
        target = (i + 0.5) * span / n
        expected = next((k for k, p in enumerate(pts) if p >= target - 1e-6), len(pts) - 1)
        assert mf.read_frame_index(frame) == expected
        assert t == pytest.approx(pts[expected], abs=1e-3)
    assert times == sorted(times)
    assert all(0 <= t < info.duration_s for t in times)


def test_many_targets_are_monotonic(media: dict[str, Path]) -> None:
    info = probe(media["vfr"])
    frames, times = sample_frames(media["vfr"], info, num_frames=40, max_side=32)
    assert len(frames) == 40
    assert times == sorted(times)
    assert [mf.read_frame_index(f) for f in frames] == sorted(mf.read_frame_index(f) for f in frames)


def test_matroska_without_tkhd(media: dict[str, Path]) -> None:
    result = decode(media["mkv"], num_frames=5)
    assert len(result.frames) == 5 and result.errors == {}
    assert result.timestamps == sorted(result.timestamps)
    indices = [mf.read_frame_index(f) for f in result.frames]
    assert indices == [round(t * 15) for t in result.timestamps]


def test_sampling_decodes_fewer_frames_than_the_file_has(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = 0
    original = decode_module._decoded

    def counting(*args):
        nonlocal decoded
        for frame in original(*args):
            decoded += 1
            yield frame

    monkeypatch.setattr(decode_module, "_decoded", counting)
    info = probe(media["long"])
    frames, times = sample_frames(media["long"], info, num_frames=4)
    assert [mf.read_frame_index(f) for f in frames] == [round(t * 15) for t in times]
    assert decoded < info.frame_count * 0.5


def test_skipping_nonref_frames_changes_nothing(media: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    info = probe(media["bframes"])
    results = {}
    for skip in (False, True):
        monkeypatch.setattr(decode_module, "SKIP_NONREF", skip)
        results[skip] = sample_frames(media["bframes"], info, num_frames=6)
    frames, times = results[True]
    assert times == results[False][1]
    assert all(np.array_equal(a, b) for a, b in zip(frames, results[False][0]))
    assert [mf.read_frame_index(f) for f in frames] == [round(t * 15) for t in times]


def test_audio_only_decode_has_no_frames(media: dict[str, Path]) -> None:
    result = decode(media["wav"])
    assert result.frames == [] and result.timestamps == []
    assert result.audio is not None and result.errors == {}


def test_video_only_decode_has_no_audio(media: dict[str, Path]) -> None:
    result = decode(media["video_only"], num_frames=2)
    assert result.audio is None and len(result.frames) == 2 and result.errors == {}


# ----------------------------------------------------------------------------- audio


@pytest.mark.parametrize("key,seconds", [("av", 2.0), ("m4a", 1.5), ("wav", 1.5)])
def test_audio_extraction(media: dict[str, Path], key: str, seconds: float) -> None:
    info = probe(media[key])
    audio = load_audio(media[key], info, sample_rate=16000)
    assert audio is not None
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == pytest.approx(seconds * 16000, rel=0.05)
    assert -1.0 <= audio.min() < -0.1 and 0.1 < audio.max() <= 1.0


def test_audio_max_seconds_and_rate(media: dict[str, Path]) -> None:
    info = probe(media["av"])
    audio = load_audio(media["av"], info, sample_rate=8000, max_seconds=0.5)
    assert audio is not None and len(audio) == 4000


def test_load_audio_without_audio_stream(media: dict[str, Path]) -> None:
    info = probe(media["video_only"])
    assert load_audio(media["video_only"], info) is None


def test_corrupt_audio_track_keeps_frames(media: dict[str, Path]) -> None:
    result = decode(media["bad_audio"], num_frames=3)
    assert len(result.frames) == 3
    assert result.audio is None
    assert "audio" in result.errors and "video" not in result.errors


def test_corrupt_video_track_keeps_audio(media: dict[str, Path]) -> None:
    result = decode(media["bad_video"], num_frames=3)
    assert result.frames == []
    assert result.audio is not None and len(result.audio) > 8000
    assert "video" in result.errors and "audio" not in result.errors


# ----------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    "limits",
    [
        MediaLimits(max_file_bytes=1000),
        MediaLimits(max_duration_s=1.0),
        MediaLimits(max_pixels=100 * 100),
        MediaLimits(max_fps=10.0),
        MediaLimits(max_frames=20),
    ],
    ids=["file_size", "duration", "pixels", "fps", "frame_count"],
)
def test_limits_raise_before_decoding(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch, limits: MediaLimits
) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("decoder called before limits were checked")

    monkeypatch.setattr(decode_module, "_sample_open", fail)
    monkeypatch.setattr(decode_module, "_audio_open", fail)
    with pytest.raises(LimitExceeded) as err:
        decode(media["av"], limits=limits)
    assert str(media["av"]) in str(err.value)
    with pytest.raises(LimitExceeded):
        probe(media["av"], limits)


def test_default_limits_accept_normal_file(media: dict[str, Path]) -> None:
    probe(media["av"], MediaLimits())


# ----------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaNotFound, match="does not exist"):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(MediaNotFound, match="not a regular file"):
        decode(tmp_path)


@pytest.mark.parametrize("key", ["empty", "random", "text", "random_bin"])
def test_not_a_container(media: dict[str, Path], key: str) -> None:
    with pytest.raises(VideoOpenFailure) as err:
        decode(media[key])
    assert err.value.source == str(media[key]) and err.value.reason


def test_no_stream_container(media: dict[str, Path]) -> None:
    with pytest.raises(NoDecodableStream, match="subtitle"):
        decode(media["subtitle"])


@pytest.mark.parametrize("fraction", [0.0005, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.999])
@pytest.mark.parametrize("source", ["av", "faststart"])
def test_truncated_mp4(media: dict[str, Path], tmp_path: Path, source: str, fraction: float) -> None:
    path = mf.truncate(media[source], tmp_path / "cut.mp4", fraction)
    try:
        result = decode(path, num_frames=4)
    except MediaError as exc:  # anything else (a raw av error) fails the test
        assert exc.source == str(path)
        if source == "av":  # moov at the end: gone, so the open fails
            assert isinstance(exc, (CorruptMedia, VideoOpenFailure))
        return
    assert result.frames or result.audio is not None
    assert result.timestamps == sorted(result.timestamps)
    if source == "faststart":
        assert result.errors, "truncation of the media data must be recorded"
    else:  # moov at the end: only a cut into its trailing metadata still opens, and all data is there
        assert fraction > 0.99 and len(result.frames) == 4


def test_truncated_moov_at_end_is_corrupt(media: dict[str, Path], tmp_path: Path) -> None:
    path = mf.truncate(media["av"], tmp_path / "cut.mp4", 0.5)
    with pytest.raises(CorruptMedia, match="cut.mp4"):
        probe(path)


def test_sample_frames_on_deleted_file(media: dict[str, Path], tmp_path: Path) -> None:
    path = mf.make_video_only(tmp_path / "gone.mp4", seconds=0.5)
    info = probe(path)
    path.unlink()
    with pytest.raises(MediaNotFound):
        sample_frames(path, info)
    with pytest.raises(MediaNotFound):
        load_audio(path, MediaInfo(str(path), "mp4", 1, 1.0, False, True))
