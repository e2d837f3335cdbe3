"""Audio features: librosa descriptors plus a speech-presence ratio from Silero VAD.

Silero VAD runs under ONNX Runtime without torch by default (``tagging/extractors/vad.py``);
``vad_backend="torch"`` runs the ``silero-vad`` package's own path (which imports torch), the
reference. The backend is a runtime choice, not part of the extractor id: the segments match.

The vector concatenates scaled summary statistics (log-mel, MFCC, spectral
contrast, tempo, loudness, centroid, zero-crossing rate, flatness) and three
cues that the tagger reads as evidence: ``speech_ratio`` (Silero VAD),
``music_score`` (pulse clarity and tonality) and ``silence_ratio``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from tagging.errors import ExtractorError
from tagging.extractors.base import AudioCues, Extractor, Features, ItemContent, l2_normalize, register
from tagging.runtime import cached_model, require

N_MELS = 64
N_MFCC = 20
HOP = 512


@lru_cache(maxsize=4)
def mel_basis(sample_rate: int, n_fft: int = 2048) -> np.ndarray:
    """librosa's mel filter bank, built once per sample rate (it was a third of ``describe``)."""
    librosa = require("librosa", "librosa")
    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=N_MELS)


def load_vad() -> Any:
    """Load the Silero VAD model shipped in the ``silero-vad`` package, once per process.

    Raises:
        MissingDependency: silero-vad is not installed.
    """
    silero = require("silero_vad", "silero-vad")
    try:
        import onnxruntime  # noqa: F401  - the ONNX build runs about twice as fast as the TorchScript one on CPU
        onnx = True
    except ImportError:
        onnx = False
    return cached_model(("silero-vad", onnx), lambda: silero.load_silero_vad(onnx=onnx))


def speech_segments(
    audio: np.ndarray, sample_rate: int, threshold: float = 0.5, backend: str = "onnx"
) -> list[tuple[float, float]]:
    """Return speech segments (start_s, end_s) found by Silero VAD.

    Args:
        audio: Mono float32 samples at 16 kHz (or 8 kHz).
        sample_rate: 16000 or 8000.
        threshold: Speech probability threshold.
        backend: ``"onnx"`` (ONNX Runtime and numpy, no torch) or ``"torch"`` (the package's path).

    Raises:
        MissingDependency: silero-vad is not installed.
        ValueError: unknown backend.
    """
    if backend == "onnx":
        from tagging.extractors.vad import speech_segments_onnx

        return speech_segments_onnx(audio, sample_rate, threshold)
    if backend != "torch":
        raise ValueError(f"unknown VAD backend {backend!r} (onnx or torch)")
    import torch

    silero = require("silero_vad", "silero-vad")
    model = load_vad()
    stamps = silero.get_speech_timestamps(
        torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), model, sampling_rate=sample_rate, threshold=threshold
    )
    return [(s["start"] / sample_rate, s["end"] / sample_rate) for s in stamps]


def _pulse_clarity(onset_env: np.ndarray, sample_rate: int) -> float:
    """Peak of the normalised onset autocorrelation between 50 and 200 BPM, in [0, 1]."""
    if len(onset_env) < 8 or not np.any(onset_env):
        return 0.0
    x = onset_env - onset_env.mean()
    ac = np.correlate(x, x, mode="full")[len(x) - 1 :]
    if ac[0] <= 0:
        return 0.0
    ac = ac / ac[0]
    fps = sample_rate / HOP
    lo, hi = int(fps * 60 / 200), int(fps * 60 / 50)
    window = ac[lo : min(hi, len(ac))]
    return float(np.clip(window.max(), 0.0, 1.0)) if len(window) else 0.0


@register("audio-librosa")
class AudioExtractor(Extractor):
    """librosa descriptors plus Silero speech ratio for the audio track.

    Args:
        max_seconds: Only the first this many seconds are analysed.
        vad: Run Silero VAD for the speech ratio (otherwise 0 and flagged).
        vad_threshold: Silero speech probability threshold.
        vad_backend: ``"onnx"`` (default, no torch) or ``"torch"`` (the reference); not in the id.
        silence_db: Frames quieter than this RMS level (dBFS) count as silence.
    """

    modality = "audio"
    version = "1"
    config_keys = ["max_seconds", "vad", "vad_threshold", "silence_db"]
    libraries = ("librosa", "silero-vad", "onnxruntime", "numpy")

    def __init__(
        self,
        max_seconds: float = 120.0,
        vad: bool = True,
        vad_threshold: float = 0.5,
        silence_db: float = -50.0,
        vad_backend: str = "onnx",
    ) -> None:
        self.max_seconds = max_seconds
        self.vad = vad
        self.vad_threshold = vad_threshold
        self.vad_backend = vad_backend
        self.silence_db = silence_db

    @property
    def dim(self) -> int:
        return 2 * N_MELS + 2 * N_MFCC + 14 + 1 + 3 + 2 + 1 + 1 + 3

    def describe(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Compute the descriptor vector (unnormalised) and the audio cues."""
        librosa = require("librosa", "librosa")
        if len(y) < 2048:
            y = np.pad(y, (0, 2048 - len(y)))
        spec = np.abs(librosa.stft(y, n_fft=2048, hop_length=HOP))
        # = librosa.feature.melspectrogram(S=spec**2, sr=sr, n_mels=N_MELS), whose einsum took 5x this matmul
        mel = mel_basis(sr) @ (spec**2)
        logmel = librosa.power_to_db(mel, ref=1.0, top_db=None)
        mfcc = librosa.feature.mfcc(S=logmel, n_mfcc=N_MFCC)
        contrast = librosa.feature.spectral_contrast(S=spec, sr=sr)
        centroid = librosa.feature.spectral_centroid(S=spec, sr=sr)[0]
        flatness = librosa.feature.spectral_flatness(S=spec)[0]
        zcr = librosa.feature.zero_crossing_rate(y, hop_length=HOP)[0]
        rms = librosa.feature.rms(S=spec)[0]
        rms_db = 20 * np.log10(np.maximum(rms, 1e-6))  # dBFS (a full-scale sine is about -3 dB)
        onset = librosa.onset.onset_strength(S=logmel, sr=sr)
        tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP))[0])

        silence_ratio = float(np.mean(rms_db < self.silence_db))
        pulse = _pulse_clarity(onset, sr)
        tonality = float(np.clip((-np.log10(np.median(flatness) + 1e-9) - 2.0) / 2.5, 0.0, 1.0))
        cues = {
            "tempo_bpm": round(tempo, 1),
            "loudness_dbfs": round(float(np.mean(rms_db)), 2),
            "silence_ratio": round(silence_ratio, 3),
            "pulse_clarity": round(pulse, 3),
            "tonality": round(tonality, 3),
        }
        vec = np.concatenate(
            [
                logmel.mean(1) / 80.0,
                logmel.std(1) / 40.0,
                mfcc.mean(1) / 100.0,
                mfcc.std(1) / 50.0,
                contrast.mean(1) / 50.0,
                contrast.std(1) / 20.0,
                [tempo / 200.0],
                [rms_db.mean() / 60.0, rms_db.std() / 30.0, rms_db.max() / 60.0],
                [centroid.mean() / (sr / 2), centroid.std() / (sr / 2)],
                [zcr.mean()],
                [float(np.median(flatness))],
            ]
        ).astype(np.float32)
        return vec, cues

    def extract(self, item: ItemContent) -> Features:
        if not item.has("audio"):
            return self.missing()
        sr = item.sample_rate
        y = np.asarray(item.audio, dtype=np.float32)[: int(self.max_seconds * sr)]
        try:
            vec, cues = self.describe(y, sr)
            segments = speech_segments(y, sr, self.vad_threshold, self.vad_backend) if self.vad and sr in (8000, 16000) else []
        except Exception as exc:  # noqa: BLE001
            raise ExtractorError(self.name, f"audio analysis failed: {exc}") from exc
        duration = max(len(y) / sr, 1e-6)
        speech_ratio = float(min(1.0, sum(e - s for s, e in segments) / duration))
        music = float(np.clip(0.6 * cues["pulse_clarity"] + 0.4 * cues["tonality"], 0, 1))
        music *= (1.0 - 0.6 * speech_ratio) * (1.0 - cues["silence_ratio"])
        typed = AudioCues(
            speech_ratio=round(speech_ratio, 3),
            music_score=round(music, 3),
            speech_segments=[(round(s, 2), round(e, 2)) for s, e in segments],
            vad=bool(self.vad),
            **cues,
        )
        vec = np.concatenate([vec, [speech_ratio, music, cues["silence_ratio"]]]).astype(np.float32)
        return Features(self.extractor_id, self.modality, l2_normalize(vec), typed)
