"""Silero VAD under ONNX Runtime (no torch) gives the same segments as the package's torch path."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from tagging.extractors.audio import AudioExtractor, speech_segments
from tagging.extractors.base import ItemContent
from tagging.extractors.vad import timestamps_from_probs
from tests.fixtures.media_factory import audio_signal

pytest.importorskip("silero_vad")
pytest.importorskip("onnxruntime")


def _speech(sample_rate: int) -> np.ndarray | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    import soundfile as sf
    from scipy.signal import resample_poly

    raw = subprocess.run(
        [exe, "-v", "en-us", "-s", "150", "--stdout", "The cat sat on the mat while the band played."],
        check=True, capture_output=True, timeout=30,
    ).stdout
    import io

    audio, sr = sf.read(io.BytesIO(raw), dtype="float32")
    return resample_poly(audio, sample_rate, sr).astype(np.float32)


def _clips(sample_rate: int) -> dict[str, np.ndarray]:
    clips = {kind: audio_signal(3.0, sample_rate, kind) for kind in ("tone", "noise", "silence")}
    speech = _speech(sample_rate)
    if speech is not None:
        gap = audio_signal(1.3, sample_rate, "silence")
        clips["speech"] = speech
        clips["speech-gap-tone"] = np.concatenate([speech, gap, audio_signal(1.0, sample_rate, "tone"), speech])
    return clips


@pytest.mark.parametrize("sample_rate", [16000, 8000])
def test_onnx_segments_equal_torch_segments(sample_rate: int) -> None:
    clips = _clips(sample_rate)
    for name, audio in clips.items():
        ref = speech_segments(audio, sample_rate, 0.5, backend="torch")
        got = speech_segments(audio, sample_rate, 0.5, backend="onnx")
        assert got == ref, name
    if "speech" in clips:
        assert speech_segments(clips["speech"], sample_rate)  # the spoken sentence is found


def test_state_machine_equals_the_package_on_random_probabilities() -> None:
    from silero_vad import get_speech_timestamps_from_probs

    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 400))
        # runs of speech and silence, with noise around the thresholds
        probs = np.repeat(rng.uniform(0, 1, n // 8 + 1), 8)[:n] + rng.normal(0, 0.1, n)
        probs = np.clip(probs, 0, 1).astype(np.float32)
        sr = 16000 if trial % 2 else 8000
        length = n * (512 if sr == 16000 else 256) - int(rng.integers(0, 200))
        ref = get_speech_timestamps_from_probs(probs.tolist(), sampling_rate=sr, audio_length_samples=length)
        assert timestamps_from_probs(probs, sr, length) == [(s["start"], s["end"]) for s in ref]


def test_audio_extractor_backends_give_the_same_features() -> None:
    speech = _speech(16000)
    audio = speech if speech is not None else audio_signal(3.0, 16000, "noise")
    item = ItemContent(audio=audio, sample_rate=16000)
    onnx, torch_ = AudioExtractor(), AudioExtractor(vad_backend="torch")
    assert onnx.extractor_id == torch_.extractor_id  # a runtime choice: rows stay current
    a, b = onnx.extract(item), torch_.extract(item)
    assert a.cues == b.cues
    np.testing.assert_array_equal(a.vector, b.vector)


def test_onnx_vad_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from tagging.extractors.audio import speech_segments\n"
        "speech_segments(np.zeros(16000, np.float32), 16000)\n"
        "speech_segments(np.zeros(8000, np.float32), 8000)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend"):
        speech_segments(np.zeros(1600, np.float32), 16000, backend="tinygrad")
