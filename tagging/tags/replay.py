"""What the tags need from the non-text modalities, kept per row so tags can be recomputed from text alone.

The tagger fuses per-modality category scores (:meth:`~tagging.tags.tagger.Tagger.tag`). The
visual scores come from the frame model's ImageNet probabilities (or CLIP), the audio
scores from the audio cues; neither is in the stored vectors. :func:`media_parts` computes
them, :func:`parts_to_json` stores them with their evidence in the row's ``tag_inputs_json``,
and :func:`parts_from_json` gives them back, so a text-extractor change re-tags a stored row
without decoding it (:mod:`tagging.serving.backfill.refresh`).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import numpy as np

from tagging.extractors import Features, FrameCues
from tagging.tags.taxonomy import Taxonomy

Part = tuple[str, np.ndarray, list[dict[str, Any]], np.ndarray]
"""One modality's say: ``(name, scores (C,), evidence per category, has-a-say mask (C,))``."""

FORMAT = 1


class MediaScorer(Protocol):
    """What :func:`media_parts` needs of the tagger (:class:`~tagging.tags.tagger.Tagger`)."""

    taxonomy: Taxonomy

    def score_imagenet(self, frames: Features) -> tuple[np.ndarray, list[dict[str, Any]]]: ...

    def score_clip(self, frames: Features) -> tuple[np.ndarray, list[dict[str, Any]]]: ...

    def score_audio(self, audio: Features) -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray]: ...


def media_parts(tagger: MediaScorer, features: dict[str, Features]) -> list[Part]:
    """The visual and audio parts of the fusion for one item (those present)."""
    n = len(tagger.taxonomy)
    parts: list[Part] = []
    frames = features.get("frames")
    if frames is not None and frames.present:
        if isinstance(frames.cues, FrameCues) and frames.cues.imagenet_probs is not None:
            s, ev = tagger.score_imagenet(frames)
        else:
            s, ev = tagger.score_clip(frames)
        parts.append(("visual", s, ev, np.ones(n, bool)))
    audio = features.get("audio")
    if audio is not None and audio.present:
        s, ev, say = tagger.score_audio(audio)
        parts.append(("audio", s, ev, say))
    return parts


def parts_to_json(parts: list[Part], taxonomy: Taxonomy) -> str:
    """``parts`` as the JSON text of a row's ``tag_inputs_json`` (with the category ids they are for)."""
    return json.dumps({
        "format": FORMAT,
        "categories": [c.id for c in taxonomy.categories],
        "parts": [{"name": name, "scores": [float(x) for x in scores], "evidence": ev,
                   "say": [bool(x) for x in say]} for name, scores, ev, say in parts],
    }, default=_jsonable)


def parts_from_json(text: str | None, taxonomy: Taxonomy) -> list[Part] | None:
    """The stored parts, or None when there are none or they were made for other categories."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if data.get("format") != FORMAT or data.get("categories") != [c.id for c in taxonomy.categories]:
        return None
    return [(p["name"], np.asarray(p["scores"], np.float32), p["evidence"], np.asarray(p["say"], bool))
            for p in data["parts"]]


def _jsonable(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else str(x)
