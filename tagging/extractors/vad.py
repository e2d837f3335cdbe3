"""Silero VAD under ONNX Runtime alone: the speech segments without importing torch.

The ``silero-vad`` package imports torch at package import (about 2 s and a few hundred
MiB on this machine), although it ships ONNX builds of the model. This module reads those
ONNX files from the installed package *without importing it* and runs them with numpy:

* 16 kHz: ``silero_vad_16k_sequence.onnx``, the package's batched export, one ONNX call
  per 512 frames (the package documents it as bit-exact with the streaming model);
* 8 kHz: ``silero_vad.onnx``, the streaming model, one call per 256-sample frame.

The probabilities go through :func:`timestamps_from_probs`, a copy of the package's
``get_speech_timestamps_from_probs`` state machine for its default settings (no maximum
segment length), so segments match the torch path (``backend="torch"``), which stays
selectable and is the reference in ``tests/tagging/test_vad_onnx.py``.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from tagging.errors import MissingDependency
from tagging.runtime import cached_model, require

logger = logging.getLogger(__name__)

#: (frame samples, context samples) per sample rate, as in the package.
RATE_CONFIG = {8000: (256, 32), 16000: (512, 64)}
MAX_FRAMES = 512


def model_path(name: str) -> Path:
    """Path of an ONNX file shipped in ``silero_vad/data`` (found without importing the package).

    Raises:
        MissingDependency: silero-vad is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency("silero-vad", "pip install silero-vad")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.is_file():
        raise MissingDependency("silero-vad", f"silero-vad lacks {name}; pip install 'silero-vad>=6'")
    return path


def _session(name: str) -> Any:
    ort = require("onnxruntime", "onnxruntime")

    def build() -> Any:
        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.enable_cpu_mem_arena = False
        return ort.InferenceSession(str(model_path(name)), sess_options=opts, providers=["CPUExecutionProvider"])

    return cached_model(("silero-vad-ort", name), build)


def _frame_blocks(audio: np.ndarray, frame: int, context: int, max_frames: int) -> list[np.ndarray]:
    """Frames of ``frame`` samples, each prefixed with the previous frame's last ``context``."""
    count = (audio.size + frame - 1) // frame
    frames = np.zeros((count, frame), dtype=np.float32)
    frames.reshape(-1)[: audio.size] = audio
    contexts = np.zeros((count, context), dtype=np.float32)
    if count > 1:
        contexts[1:] = frames[:-1, -context:]
    rows = np.concatenate((contexts, frames), axis=1)
    return [rows[i : i + max_frames] for i in range(0, count, max_frames)]


def speech_probs(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-frame speech probabilities (32 ms frames) from the ONNX model.

    Raises:
        ValueError: the sample rate is not 8000 or 16000.
        MissingDependency: silero-vad or onnxruntime is missing.
    """
    if sample_rate not in RATE_CONFIG:
        raise ValueError(f"Silero VAD needs 8000 or 16000 Hz, got {sample_rate}")
    audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
    frame, context = RATE_CONFIG[sample_rate]
    if audio.size == 0:
        return np.zeros(0, dtype=np.float32)
    if sample_rate == 16000:
        session = _session("silero_vad_16k_sequence.onnx")
        h = np.zeros((1, 1, 128), dtype=np.float32)
        c = np.zeros((1, 1, 128), dtype=np.float32)
        out = []
        for block in _frame_blocks(audio, frame, context, MAX_FRAMES):
            probs, h, c = session.run(["speech_probs", "hn", "cn"], {"input": block, "h": h, "c": c})
            out.append(np.asarray(probs).reshape(-1))
        return np.concatenate(out)
    session = _session("silero_vad.onnx")
    state = np.zeros((2, 1, 128), dtype=np.float32)
    sr = np.array(sample_rate, dtype=np.int64)
    rows = np.concatenate(_frame_blocks(audio, frame, context, MAX_FRAMES))
    out = np.empty(len(rows), dtype=np.float32)
    for i, row in enumerate(rows):
        prob, state = session.run(None, {"input": row[None, :], "state": state, "sr": sr})
        out[i] = float(np.asarray(prob).reshape(-1)[0])
    return out


def timestamps_from_probs(
    probs: np.ndarray,
    sample_rate: int,
    n_samples: int,
    threshold: float = 0.5,
    min_speech_ms: int = 250,
    min_silence_ms: int = 100,
    pad_ms: int = 30,
) -> list[tuple[int, int]]:
    """Speech segments in samples: silero-vad's state machine for its defaults (no length cap).

    Args:
        probs: Per-frame probabilities from :func:`speech_probs`.
        sample_rate: 8000 or 16000.
        n_samples: Length of the audio in samples.
        threshold: Speech starts at or above this probability; ends below ``threshold - 0.15``.
        min_speech_ms: Shorter segments are dropped.
        min_silence_ms: Silence this long ends a segment.
        pad_ms: Padding added on each side of a segment.
    """
    window = RATE_CONFIG[sample_rate][0]
    min_speech = sample_rate * min_speech_ms / 1000
    pad = sample_rate * pad_ms / 1000
    min_silence = sample_rate * min_silence_ms / 1000
    neg_threshold = max(threshold - 0.15, 0.01)
    speeches: list[dict[str, int]] = []
    current: dict[str, int] = {}
    triggered, temp_end = False, 0
    for i, prob in enumerate(np.asarray(probs, dtype=np.float64).tolist()):
        sample = window * i
        if prob >= threshold and temp_end:
            temp_end = 0
        if prob >= threshold and not triggered:
            triggered, current["start"] = True, sample
            continue
        if prob < neg_threshold and triggered:
            temp_end = temp_end or sample
            if sample - temp_end < min_silence:
                continue
            current["end"] = temp_end
            if current["end"] - current["start"] > min_speech:
                speeches.append(current)
            current, temp_end, triggered = {}, 0, False
    if current and n_samples - current["start"] > min_speech:
        current["end"] = n_samples
        speeches.append(current)
    return _pad(speeches, pad, n_samples)


def _pad(speeches: list[dict[str, int]], pad: float, n_samples: int) -> list[tuple[int, int]]:
    """The package's padding step: pad each side, split short gaps between neighbours."""
    for i, speech in enumerate(speeches):
        if i == 0:
            speech["start"] = int(max(0, speech["start"] - pad))
        if i != len(speeches) - 1:
            gap = speeches[i + 1]["start"] - speech["end"]
            if gap < 2 * pad:
                speech["end"] += int(gap // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - gap // 2))
            else:
                speech["end"] = int(min(n_samples, speech["end"] + pad))
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - pad))
        else:
            speech["end"] = int(min(n_samples, speech["end"] + pad))
    return [(s["start"], s["end"]) for s in speeches]


def speech_segments_onnx(audio: np.ndarray, sample_rate: int, threshold: float = 0.5) -> list[tuple[float, float]]:
    """Speech segments (start_s, end_s) from Silero VAD under ONNX Runtime, torch-free.

    Raises:
        ValueError: the sample rate is not 8000 or 16000.
        MissingDependency: silero-vad or onnxruntime is missing.
    """
    audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
    probs = speech_probs(audio, sample_rate)
    stamps = timestamps_from_probs(probs, sample_rate, audio.size, threshold)
    return [(s / sample_rate, e / sample_rate) for s, e in stamps]
