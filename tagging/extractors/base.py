"""The extractor contract and its registry.

An extractor turns one modality of an item into an L2-normalised feature vector.
Each one has a registry name, a fixed output ``dim``, a ``config_keys`` list that
round-trips through ``save``/``load`` (as sentence-transformers modules do), and
loads its heavy model lazily, once per process, through :func:`cached_model`.

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
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

import numpy as np

from tagging.errors import MissingDependency, ModelLoadError

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


@dataclass
class Features:
    """One extractor's output for one item.

    Attributes:
        extractor_id: ``name@version`` of the extractor plus a short config hash.
        modality: "frames", "audio" or "text".
        vector: L2-normalised float32 vector of length ``dim``, or None when the modality is missing.
        extras: Side outputs used as evidence (class probabilities, speech ratio, ...).
    """

    extractor_id: str
    modality: str
    vector: np.ndarray | None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def present(self) -> bool:
        """True when the modality was present and a vector was computed."""
        return self.vector is not None


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """Return ``x`` scaled to unit L2 norm along ``axis`` (float32)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return (x / np.maximum(norm, eps)).astype(np.float32)


def library_versions(*names: str) -> dict[str, str]:
    """Return installed versions of ``names`` (missing ones are left out)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def cache_dir() -> Path:
    """Directory for derived files (``TAGGING_CACHE_DIR``, default ``~/.cache/tagging``)."""
    import os

    return Path(os.environ.get("TAGGING_CACHE_DIR") or Path.home() / ".cache" / "tagging")


def pick_device(device: str = "auto") -> str:
    """Resolve ``"auto"`` to ``"cuda"`` when a GPU is present, else ``"cpu"``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


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
        return Features(self.extractor_id, self.modality, None, {})

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
_MODELS: dict[tuple[Any, ...], Any] = {}
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


def cached_model(key: tuple[Any, ...], loader: Callable[[], Any]) -> Any:
    """Load a heavy model once per process and return the cached object."""
    with _LOCK:
        if key not in _MODELS:
            logger.info("loading model %s", key)
            _MODELS[key] = loader()
        return _MODELS[key]


def require(module: str, install: str) -> Any:
    """Import ``module`` or raise :class:`MissingDependency` telling what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(module, f"not installed; run `pip install {install}`") from exc
