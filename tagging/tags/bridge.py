"""The ImageNet class -> category bridge that turns EfficientNet's class probabilities into category scores.

Each ImageNet class spreads its probability over the categories its name is most similar
to (softmax over categories), scaled by how related the class is to any category at all,
so that "sliding door" says little and "drum" a lot. The similarity is text similarity of
English class names to the categories' English descriptions and prompts, by one text
extractor (MiniLM by default: ``TaggerConfig.bridge_text_extractor``; the temperature and
relevance level were set on its similarities), whatever extractor reads the captions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

import numpy as np

from tagging.data import imagenet_classes
from tagging.runtime import cache_dir
from tagging.tags.taxonomy import Taxonomy


def imagenet_bridge(taxonomy: Taxonomy, text: Any, temperature: float, relevance: float) -> np.ndarray:
    """Class -> category weights (1000, C), cached on disk under ``TAGGING_CACHE_DIR``.

    Args:
        taxonomy: The categories (their ``texts()`` are embedded).
        text: A text extractor with ``extractor_id`` and ``embed_texts``.
        temperature: Softmax temperature over categories.
        relevance: Best class-to-category similarity under which a class counts as unrelated.
    """
    groups = [c.texts() for c in taxonomy.categories]
    texts_fp = hashlib.sha1(json.dumps(groups).encode()).hexdigest()[:12]
    key = f"bridge-{texts_fp}-{text.extractor_id}-{temperature}-{relevance}"
    cache = cache_dir() / (re.sub(r"[^A-Za-z0-9_.-]", "_", key) + ".npy")
    if cache.exists():
        return np.load(cache)
    cls_emb = text.embed_texts([lemmas for _, lemmas, _ in imagenet_classes()])
    flat = text.embed_texts([t for g in groups for t in g])
    bounds = np.cumsum([0, *(len(g) for g in groups)])
    sims = np.stack([(cls_emb @ flat[a:b].T).max(axis=1) for a, b in zip(bounds[:-1], bounds[1:])], axis=1)
    logits = sims / temperature
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    related = 1.0 / (1.0 + np.exp(-(sims.max(axis=1, keepdims=True) - relevance) / 0.04))
    bridge = (related * w / w.sum(axis=1, keepdims=True)).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, bridge)
    os.replace(tmp, cache)
    return bridge
