"""Second-level labels: the best-matching sub-topics of each returned category.

Commercial video-labelling APIs return a label together with its parents; here each
returned :class:`~tagging.tags.tagger.Tag` carries the sub-topics of its category that the
item's own words or pictures support:

* **text** (caption, transcript, on-screen text): cosine similarity of the text's
  embedding to the sub-topic name, raised to ``keyword_score`` when the text names
  the sub-topic outright ("street dance" in the caption; "街舞" in a Chinese one when the
  taxonomy has ``subtopic_names["zh"]``; the support then says which ``word``);
* **visual**: cosine similarity of the ImageNet class names that were the tag's
  visual evidence ("golden retriever") to the sub-topic names ("dogs"), for classes
  the frames actually showed (probability >= ``min_class_prob``). Class names are
  one or two words and match sub-topic names loosely ("catamaran" ~ "cats"), so each
  class supports at most its single best sub-topic and needs ``visual_threshold``.

A sub-topic is kept when its best score over the sources reaches its threshold; at
most ``max_per_tag`` are kept, best first, each naming the source that supports it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from tagging.language import keyword_pattern, normalize
from tagging.tags.taxonomy import Taxonomy

logger = logging.getLogger(__name__)


@dataclass
class SubtopicConfig:
    """How sub-topics are scored and kept.

    Attributes:
        threshold: Minimum text similarity (or keyword score) for a sub-topic to be returned;
            None: the text extractor's ``calibration.subtopic_threshold``.
        visual_threshold: Minimum similarity of an ImageNet class name to a sub-topic name.
        max_per_tag: Sub-topics kept per tag.
        keyword_score: Score of a sub-topic that a text names outright.
        min_class_prob: ImageNet classes under this mean probability are not visual evidence.
    """

    threshold: float | None = None
    visual_threshold: float = 0.45
    max_per_tag: int = 2
    keyword_score: float = 0.9
    min_class_prob: float = 0.05


class SubtopicScorer:
    """Score the sub-topics of a category against an item's texts and ImageNet classes.

    Args:
        taxonomy: The taxonomy whose categories' ``subtopics`` are scored.
        text: A text extractor with ``embed_texts(list[str]) -> (n, dim)`` L2-normalised rows.
        config: Thresholds.
    """

    def __init__(self, taxonomy: Taxonomy, text: Any, config: SubtopicConfig | None = None) -> None:
        self.taxonomy = taxonomy
        self.text = text
        self.config = config or SubtopicConfig()
        self._emb: dict[str, list[np.ndarray]] = {}
        self._class_emb: dict[str, np.ndarray] = {}
        self._patterns: dict[tuple[int, str], list[list[tuple[str, re.Pattern[str]]]]] = {}

    def threshold(self, text: Any = None) -> float:
        """The text threshold in force: the config's, else the calibration of ``text`` (None: the scorer's own)."""
        if self.config.threshold is not None:
            return self.config.threshold
        return float((text or self.text).calibration.subtopic_threshold)

    def patterns(self, category: int, language: str) -> list[list[tuple[str, re.Pattern[str]]]]:
        """Per sub-topic of ``category``, ``(word, pattern)`` for its English name and its name in ``language``."""
        key = (category, language)
        if key not in self._patterns:
            cat = self.taxonomy.categories[category]
            self._patterns[key] = [
                [(w, keyword_pattern(w)) for w in cat.subtopic_words(i, language)] for i in range(len(cat.subtopics))
            ]
        return self._patterns[key]

    def embeddings(self, text: Any = None) -> list[np.ndarray]:
        """Per category, the embeddings (n_subtopics, dim) of its sub-topic names.

        Args:
            text: The text extractor to embed with (None: the scorer's own).
        """
        text = text or self.text
        if text.name not in self._emb:
            names = [s for c in self.taxonomy.categories for s in c.subtopics]
            flat = text.embed_fixed(names) if names else np.zeros((0, 1), np.float32)
            bounds = np.cumsum([0, *(len(c.subtopics) for c in self.taxonomy.categories)])
            self._emb[text.name] = [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        return self._emb[text.name]

    def _class_embeddings(self, names: list[str]) -> np.ndarray:
        missing = [n for n in names if n not in self._class_emb]
        if missing:
            for n, v in zip(missing, self.text.embed_texts(missing)):
                self._class_emb[n] = v
        return np.stack([self._class_emb[n] for n in names])

    def score(
        self,
        category: int,
        texts: list[tuple[str, str, np.ndarray, str | None, Any]],
        visual: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Sub-topics of one category supported by the item, best first.

        Args:
            category: Index of the category in the taxonomy.
            texts: ``(source, text, embedding, language, extractor)`` for each non-empty text
                source (the embedding by that extractor).
            visual: The tag's ImageNet evidence, ``[{"class", "prob", "timestamp"}, ...]``.

        Returns:
            ``[{"name", "score", "source", ...}]`` (``"class"`` and ``"timestamp"`` for
            visual support), at most ``max_per_tag`` items, each scoring >= its threshold.
        """
        cat = self.taxonomy.categories[category]
        cfg = self.config
        shown = [v for v in (visual or []) if v.get("class") and float(v.get("prob") or 0.0) >= cfg.min_class_prob]
        if not cat.subtopics or not (texts or shown):
            return []
        best: dict[int, dict[str, Any]] = {}

        def offer(i: int, score: float, support: dict[str, Any], threshold: float) -> None:
            if score >= threshold and score > best.get(i, {}).get("score", -1.0):
                best[i] = {"name": cat.subtopics[i], "score": round(float(score), 4), **support}

        for source, text, vec, language, model in texts:
            sims = self.embeddings(model)[category] @ vec
            lowered = normalize(text)
            for i, words in enumerate(self.patterns(category, language or "en")):
                s, support = float(sims[i]), {"source": source}
                named = [w for w, pattern in words if pattern.search(lowered)]
                if named:
                    s = max(s, cfg.keyword_score)
                    if named[0] != cat.subtopics[i]:
                        support["word"] = named[0]
                offer(i, s, support, self.threshold(model))
        if shown:
            emb = self.embeddings()[category]
            sims = self._class_embeddings([v["class"] for v in shown]) @ emb.T  # (n_classes, n_sub)
            for j, v in enumerate(shown):
                i = int(np.argmax(sims[j]))
                support = {"source": "visual", "class": v["class"], "timestamp": v.get("timestamp")}
                offer(i, float(sims[j, i]), support, cfg.visual_threshold)
        return sorted(best.values(), key=lambda d: -d["score"])[: cfg.max_per_tag]
