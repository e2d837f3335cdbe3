"""The extractor contract and its registry.

An extractor turns one modality of an item into an L2-normalised feature vector.
Each one has a registry name, a fixed output ``dim``, a ``config_keys`` list that
round-trips through ``save``/``load`` (as sentence-transformers modules do), and
loads its heavy model lazily, once per process, through :func:`tagging.runtime.cached_model`.

Example:
    >>> from tagging.extractors import get_extractor
    >>> text = get_extractor("text-minilm")
    >>> text.extract(ItemContent(text="surfing big waves")).vector.shape
    (384,)
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

import numpy as np

from tagging.errors import ModelLoadError
from tagging.runtime import cache_dir, cached_model, library_versions, pick_device, require  # noqa: F401 - re-exported

logger = logging.getLogger(__name__)

MODALITIES = ("frames", "audio", "text")


@dataclass
class ItemContent:
    """Everything an extractor may look at for one item.

    Attributes:
        frames: Sampled RGB uint8 frames (H, W, 3); empty when the item has no video.
        timestamps: Presentation time in seconds of each frame.
        audio: Mono float32 samples, or None when the item has no audio.
        sample_rate: Sample rate of ``audio``.
        text: Caption text (title, description, hashtags, and later transcript/OCR), or "".
    """

    frames: list[np.ndarray] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    audio: np.ndarray | None = None
    sample_rate: int = 16000
    text: str = ""

    def has(self, modality: str) -> bool:
        """Return True when the item carries data for ``modality``."""
        if modality == "frames":
            return len(self.frames) > 0
        if modality == "audio":
            return self.audio is not None and len(self.audio) > 0
        if modality == "text":
            return bool(self.text and self.text.strip())
        raise ValueError(f"unknown modality {modality!r}")


@dataclass(frozen=True)
class ClassHit:
    """One ImageNet class seen in the frames: its label, mean probability and the frame it peaks in."""

    label: str
    prob: float
    timestamp: float | None = None


@dataclass
class FrameCues:
    """Evidence of a frames extractor.

    Attributes:
        imagenet_probs: (1000,) mean class probabilities (EfficientNet), or None (CLIP).
        top_classes: The most probable classes with the frame each peaks in.
        frame_embeddings: (n, d) per-frame image embeddings (CLIP), or None.
        timestamps: Time of each frame in seconds.
    """

    imagenet_probs: np.ndarray | None = None
    top_classes: list[ClassHit] = field(default_factory=list)
    frame_embeddings: np.ndarray | None = None
    timestamps: list[float] = field(default_factory=list)


@dataclass
class AudioCues:
    """Evidence of the audio extractor (ratios in [0, 1]).

    Attributes:
        speech_ratio: Share of the track the VAD calls speech.
        music_score: Pulse clarity and tonality, damped by speech and silence.
        silence_ratio: Share of frames under the silence level.
        tempo_bpm: Estimated tempo.
        loudness_dbfs: Mean RMS level in dBFS.
        pulse_clarity: Strength of the beat.
        tonality: How tonal (vs noise-like) the spectrum is.
        speech_segments: ``(start, end)`` seconds of each VAD speech segment.
        vad: Whether the VAD ran.
    """

    speech_ratio: float = 0.0
    music_score: float = 0.0
    silence_ratio: float = 0.0
    tempo_bpm: float = 0.0
    loudness_dbfs: float = 0.0
    pulse_clarity: float = 0.0
    tonality: float = 0.0
    speech_segments: list[tuple[float, float]] = field(default_factory=list)
    vad: bool = False


@dataclass
class TextCues:
    """Evidence of a text extractor: how much text it embedded."""

    chars: int = 0


Cues = FrameCues | AudioCues | TextCues


@dataclass
class Features:
    """One extractor's output for one item.

    Attributes:
        extractor_id: ``name@version`` of the extractor plus a short config hash.
        modality: "frames", "audio" or "text".
        vector: L2-normalised float32 vector of length ``dim``, or None when the modality is missing.
        cues: The modality's typed side outputs used as evidence (None when missing).
    """

    extractor_id: str
    modality: str
    vector: np.ndarray | None
    cues: Cues | None = None

    @property
    def present(self) -> bool:
        """True when the modality was present and a vector was computed."""
        return self.vector is not None


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """Return ``x`` scaled to unit L2 norm along ``axis`` (float32)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return (x / np.maximum(norm, eps)).astype(np.float32)


class Extractor(ABC):
    """Base class of every feature extractor.

    Subclasses set ``name``, ``modality``, ``version`` and ``config_keys``, take
    their config as constructor keyword arguments stored under the same names,
    and implement :meth:`dim` and :meth:`extract`.
    """

    name: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    config_keys: ClassVar[list[str]] = []
    libraries: ClassVar[tuple[str, ...]] = ("numpy",)

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of the output vector."""

    @abstractmethod
    def extract(self, item: ItemContent) -> Features:
        """Compute this extractor's features for one item.

        Args:
            item: The decoded item.

        Returns:
            Features whose ``vector`` is None when the item lacks this modality.

        Raises:
            ExtractorError: The model failed on this item.
        """

    def extract_batch(self, items: list[ItemContent]) -> list[Features]:
        """Extract features for several items (subclasses may batch the model call)."""
        return [self.extract(item) for item in items]

    def missing(self) -> Features:
        """Return the explicit 'modality missing' result."""
        return Features(self.extractor_id, self.modality, None)

    def get_config_dict(self) -> dict[str, Any]:
        """Return the constructor config as a JSON-friendly dict."""
        return {key: getattr(self, key) for key in self.config_keys}

    @property
    def extractor_id(self) -> str:
        """Stable id: ``name@version`` plus a short hash of the config."""
        blob = json.dumps(self.get_config_dict(), sort_keys=True, default=str)
        digest = hashlib.sha1(blob.encode()).hexdigest()[:8]
        return f"{self.name}@{self.version}+{digest}"

    def save(self, path: str | Path) -> None:
        """Write ``config.json`` (name, version, config, library versions) to ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        info = {
            "name": self.name,
            "version": self.version,
            "modality": self.modality,
            "dim": self.dim,
            "extractor_id": self.extractor_id,
            "config": self.get_config_dict(),
            "libraries": library_versions(*self.libraries),
        }
        (path / "config.json").write_text(json.dumps(info, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> Extractor:
        """Rebuild an extractor from a directory written by :meth:`save`.

        Raises:
            ModelLoadError: ``config.json`` is missing or names another extractor.
        """
        cfg_file = Path(path) / "config.json"
        try:
            info = json.loads(cfg_file.read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(str(cfg_file), f"cannot read extractor config: {exc}") from exc
        if cls.name and info.get("name") != cls.name:
            raise ModelLoadError(str(cfg_file), f"config is for {info.get('name')!r}, not {cls.name!r}")
        return get_extractor(info["name"], **info.get("config", {}))


# ---------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Extractor]] = {}
_INSTANCES: dict[tuple[str, str], Extractor] = {}
_LOCK = threading.RLock()

E = TypeVar("E", bound=type[Extractor])


def register(name: str) -> Callable[[E], E]:
    """Class decorator that adds an extractor to the registry under ``name``."""

    def wrap(cls: E) -> E:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def list_extractors(modality: str | None = None) -> list[str]:
    """Names of the registered extractors, optionally of one modality."""
    return sorted(n for n, c in _REGISTRY.items() if modality is None or c.modality == modality)


def get_extractor(name: str, **config: Any) -> Extractor:
    """Return the (per-process cached) extractor ``name`` built with ``config``.

    Raises:
        KeyError: No extractor of that name is registered.
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown extractor {name!r}; registered: {', '.join(list_extractors())}")
    key = (name, json.dumps(config, sort_keys=True, default=str))
    with _LOCK:
        if key not in _INSTANCES:
            _INSTANCES[key] = _REGISTRY[name](**config)
        return _INSTANCES[key]
