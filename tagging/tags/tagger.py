"""Zero-shot tagging: score every category from every available modality and fuse.

Per modality, each category gets a score in [0, 1] plus evidence:

* **text** (caption, transcript, on-screen text in any language): similarity of the text
  embedding (English sources by ``english_text_extractor``) to the category texts, a
  sigmoid around the extractor's calibration, raised when the text names the category
  or a sub-topic (in English or, from the taxonomy's names, in the text's language);
  evidence records each source's language, the model and the words as written;
* **visual**: EfficientNet's ImageNet class probabilities through a class -> category
  bridge (:mod:`tagging.tags.bridge`); with CLIP, zero-shot softmax over category prompts;
* **audio**: the speech and music cues, for categories that declare audio cues.

The fused score is the reliability-weighted mean over the modalities that have a
say for that category; a missing modality abstains rather than voting zero.

With a trained :class:`~tagging.tags.heads.TagHead` attached (``Tagger.head``) and the
fused feature vector passed as ``head_input``, the categories the head has examples
of are scored by the head instead: the head's probability, calibrated so that the
category's held-out threshold maps to 0.5, blended with the zero-shot score by
``head_blend`` (1.0 = the head alone). Categories without examples stay zero-shot.

Each returned tag also carries the best-matching sub-topics of its category
(:mod:`tagging.tags.subtopics`), a second label level as video-labelling APIs return.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tagging.data import imagenet_classes
from tagging.extractors import AudioCues, Features, get_extractor
from tagging.extractors.text import DEFAULT_TEXT_EXTRACTOR
from tagging.language import normalize, source_languages
from tagging.tags.bridge import imagenet_bridge
from tagging.tags.replay import Part, media_parts
from tagging.tags.subtopics import SubtopicConfig, SubtopicScorer
from tagging.tags.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from tagging.tags.heads import TagHead

logger = logging.getLogger(__name__)


@dataclass
class TaggerConfig:
    """Fusion weights and score shaping.

    Attributes:
        weights: Reliability weight of each modality in the fused score.
        text_sources: Reliability of each text source within the text modality.
        text_center: Similarity that maps to a text score of 0.5 (None: the extractor's calibration).
        text_scale: Sigmoid width for text similarity (None: the extractor's calibration).
        keyword_score: Text score given when a caption names the category outright.
        bridge_temperature: Softmax temperature of the ImageNet-class to category bridge.
        bridge_relevance: Class-to-category similarity under which a class counts as unrelated.
        english_text_extractor: Scores sources detected as English (docs/tagging-quality.md);
            None: the tagger's own extractor scores every language.
        bridge_text_extractor: Links the (English) ImageNet class names to categories.
        visual_gain: Multiplier on the bridged visual mass before clipping to [0, 1].
        clip_temperature: Softmax temperature for CLIP zero-shot scores.
        top_k: Tags returned per video.
        min_score: Tags under this fused score are not returned.
        head_blend: Weight of a trained head's calibrated score against the zero-shot score.
        subtopics: Sub-topic scoring settings.
    """

    weights: dict[str, float] = field(default_factory=lambda: {"text": 0.45, "visual": 0.4, "audio": 0.15})
    text_sources: dict[str, float] = field(default_factory=lambda: {"caption": 1.0, "transcript": 0.8, "ocr": 0.6})
    text_center: float | None = None
    text_scale: float | None = None
    keyword_score: float = 0.9
    bridge_temperature: float = 0.04
    bridge_relevance: float = 0.35
    english_text_extractor: str | None = "text-minilm"
    bridge_text_extractor: str = "text-minilm"
    visual_gain: float = 2.0
    clip_temperature: float = 0.01
    top_k: int = 5
    min_score: float = 0.05
    head_blend: float = 1.0
    subtopics: SubtopicConfig = field(default_factory=SubtopicConfig)


@dataclass
class Tag:
    """One assigned category with its fused score, per-modality evidence and sub-topics.

    ``subtopics`` is a list of ``{"name", "score", "source", ...}``, best first.
    """

    id: str
    name: str
    score: float
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    subtopics: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "id": self.id, "name": self.name, "score": round(self.score, 4), "evidence": self.evidence, "subtopics": self.subtopics,
        }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Tagger:
    """Assign taxonomy categories to an item from its extracted features.

    Args:
        taxonomy: The taxonomy, or None for the packaged default.
        config: Fusion settings.
        text_extractor: Registry name of the text extractor used to embed category texts.
        head: A trained tag head for this taxonomy (see :meth:`set_head`).

    Raises:
        HeadMismatchError: ``head`` was trained on another taxonomy.
    """

    def __init__(
        self,
        taxonomy: Taxonomy | None = None,
        config: TaggerConfig | None = None,
        text_extractor: str = DEFAULT_TEXT_EXTRACTOR,
        head: TagHead | None = None,
    ) -> None:
        self.taxonomy = taxonomy or load_taxonomy()
        self.config = config or TaggerConfig()
        self.text = get_extractor(text_extractor)
        self._index = {c.id: i for i, c in enumerate(self.taxonomy.categories)}
        self.head: TagHead | None = None
        if head is not None:
            self.set_head(head)
        eng = self.config.english_text_extractor
        self.english = get_extractor(eng) if eng and eng != text_extractor else None
        self.subtopics = SubtopicScorer(self.taxonomy, self.english or self.text, self.config.subtopics)
        self._cat_emb: dict[str, list[np.ndarray]] = {}
        self._bridge: np.ndarray | None = None
        self._clip_emb: dict[str, np.ndarray] = {}
        self.clip_extractor: Any = None  # the pipeline's CLIP frame extractor, when frames come from CLIP

    def set_head(self, head: TagHead | None) -> None:
        """Attach (or with None, detach) a trained tag head.

        Raises:
            HeadMismatchError: The head was trained on another taxonomy.
        """
        if head is not None:
            head.check(taxonomy_id=self.taxonomy.taxonomy_id)
        self.head = head

    def category_embeddings(self, text: Any = None) -> list[np.ndarray]:
        """Per category, the embeddings (n_texts, dim) of its description and prompts.

        Args:
            text: The text extractor to embed with (None: the tagger's own).
        """
        text = text or self.text
        if text.name not in self._cat_emb:
            groups = [c.texts() for c in self.taxonomy.categories]
            flat = text.embed_fixed([t for group in groups for t in group])
            bounds = np.cumsum([0, *(len(g) for g in groups)])
            self._cat_emb[text.name] = [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        return self._cat_emb[text.name]

    def scorer(self, language: str | None) -> Any:
        """The text extractor that scores a source in ``language`` (see ``english_text_extractor``)."""
        return self.english if self.english is not None and language == "en" else self.text

    def embed_sources(self, sources: dict[str, str], languages: dict[str, str | None]) -> list[tuple[Any, np.ndarray]]:
        """``(extractor, embedding)`` of each text source, each by the extractor of its language."""
        texts, models = list(sources.values()), [self.scorer(languages[src]) for src in sources]
        out: dict[int, tuple[Any, np.ndarray]] = {}
        for model in {id(m): m for m in models}.values():
            idx = [i for i, m in enumerate(models) if m is model]
            out.update({i: (model, vec) for i, vec in zip(idx, model.embed_texts([texts[i] for i in idx]))})
        return [out[i] for i in range(len(texts))]

    def bridge(self) -> np.ndarray:
        """ImageNet class -> category weights (1000, C) (:func:`tagging.tags.bridge.imagenet_bridge`)."""
        if self._bridge is None:
            cfg = self.config
            self._bridge = imagenet_bridge(self.taxonomy, get_extractor(cfg.bridge_text_extractor),
                                           cfg.bridge_temperature, cfg.bridge_relevance)
        return self._bridge

    def prepare(self) -> None:
        """Compute the category and sub-topic embeddings, the bridge and the language model now, not on first use."""
        for model in {self.text, self.english or self.text}:
            self.category_embeddings(model)
            self.subtopics.embeddings(model)
        self.bridge()
        source_languages({"caption": "warm up"})

    def score_text(
        self, texts: dict[str, str], embeddings: list[tuple[Any, np.ndarray]] | None = None,
        languages: dict[str, str | None] | None = None,
    ) -> tuple[np.ndarray, list[dict[str, Any]]] | None:
        """Score categories from text sources (caption, transcript, ocr); None if there is no text.

        Args:
            texts: Text per source.
            embeddings: :meth:`embed_sources` of the non-empty texts, when already computed.
            languages: Language per source (:func:`~tagging.language.source_languages`); detected when missing.
        """
        sources = {k: v for k, v in texts.items() if v and v.strip()}
        if not sources:
            return None
        cats = self.taxonomy.categories
        cfg = self.config
        langs = source_languages(sources, languages)
        emb = self.embed_sources(sources, langs) if embeddings is None else embeddings
        scores = np.zeros(len(cats), np.float32)
        evidence: list[dict[str, Any]] = [{} for _ in cats]
        for (source, text), (model, vec) in zip(sources.items(), emb):
            cat_emb = self.category_embeddings(model)
            center = model.calibration.center if cfg.text_center is None else cfg.text_center
            scale = model.calibration.scale if cfg.text_scale is None else cfg.text_scale
            reliability = cfg.text_sources.get(source, 0.5)
            lowered = normalize(text)
            keywords = self.taxonomy.keyword_patterns(langs[source] or "en")
            for c, cat in enumerate(cats):
                sims = cat_emb[c] @ vec
                best = int(np.argmax(sims))
                s = float(_sigmoid((sims[best] - center) / scale))
                hits = [word for word, pattern in keywords[c] if pattern.search(lowered)]
                if hits:
                    s = max(s, cfg.keyword_score)
                s *= reliability
                if s >= scores[c]:
                    scores[c] = s
                    ev = {"source": source, "language": langs[source], "model": model.name,
                          "similarity": round(float(sims[best]), 4), "matched": cat.texts()[best]}
                    if hits:
                        ev["keywords"] = hits
                    ev["snippet"] = text[:160]
                    evidence[c] = ev
        return scores, evidence

    def score_imagenet(self, frames: Features) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Score categories from averaged ImageNet probabilities through the bridge."""
        probs = np.asarray(frames.cues.imagenet_probs, np.float32)
        contrib = probs[:, None] * self.bridge()  # (1000, C)
        scores = np.clip(contrib.sum(axis=0) * self.config.visual_gain, 0.0, 1.0)
        classes = imagenet_classes()
        evidence = []
        top_ts = {h.label: h.timestamp for h in frames.cues.top_classes}
        for c in range(contrib.shape[1]):
            top = np.argsort(-contrib[:, c])[:3]
            items = []
            for i in top:
                if contrib[i, c] < 0.005:
                    continue
                label = classes[i][1].split(",")[0].strip()
                items.append({"class": label, "prob": round(float(probs[i]), 4), "timestamp": top_ts.get(label)})
            evidence.append({"model": frames.extractor_id, "imagenet": items})
        return scores, evidence

    def score_clip(self, frames: Features, clip_name: str = "clip") -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Score categories zero-shot with CLIP: softmax over category prompt similarities."""
        key = frames.extractor_id
        if key not in self._clip_emb:
            clip = self.clip_extractor or get_extractor(clip_name)
            texts = [c.texts() for c in self.taxonomy.categories]
            self._clip_emb[key] = np.stack([clip.embed_texts(group).mean(axis=0) for group in texts])
        cat = self._clip_emb[key]
        cat = cat / np.linalg.norm(cat, axis=1, keepdims=True)
        sims = cat @ frames.vector
        logits = sims / self.config.clip_temperature
        p = np.exp(logits - logits.max())
        p /= p.sum()
        evidence = [{"model": frames.extractor_id, "clip_similarity": round(float(s), 4)} for s in sims]
        return p.astype(np.float32), evidence

    def score_audio(self, audio: Features) -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray]:
        """Score categories with audio cues; also return which categories audio has a say in."""
        ac = audio.cues if isinstance(audio.cues, AudioCues) else AudioCues()
        cues = {"music": float(ac.music_score), "speech": float(ac.speech_ratio)}
        scores = np.zeros(len(self.taxonomy), np.float32)
        has_say = np.zeros(len(self.taxonomy), bool)
        evidence: list[dict[str, Any]] = []
        for c, cat in enumerate(self.taxonomy.categories):
            ev: dict[str, Any] = {}
            for cue, weight in cat.audio_cues.items():
                has_say[c] = True
                scores[c] = max(scores[c], weight * cues[cue])
                ev[cue] = round(cues[cue], 3)
            evidence.append(ev)
        return scores, evidence, has_say

    def tag(
        self,
        features: dict[str, Features],
        texts: dict[str, str] | None = None,
        top_k: int | None = None,
        head_input: np.ndarray | None = None,
        languages: dict[str, str | None] | None = None,
        media: list[Part] | None = None,
    ) -> list[Tag]:
        """Rank the taxonomy's categories for one item.

        Args:
            features: Extractor outputs keyed by modality ("frames", "audio", "text").
            texts: Text sources keyed by kind ("caption", "transcript", "ocr").
            top_k: Tags to return (default from config); 0 returns every category.
            head_input: The item's fused feature vector; with a head attached, the head
                scores the categories it has examples of.
            languages: Known language per text source (e.g. Whisper's for ``"transcript"``);
                the others are detected.
            media: The visual and audio parts when already computed (:func:`~tagging.tags.replay.media_parts`)
                or stored (:func:`~tagging.tags.replay.parts_from_json`); ``features`` is then not read.

        Returns:
            Tags sorted by fused score, each with evidence per modality that had a say
            (and ``"head"`` where the head scored it) and the supported sub-topics.
        """
        n = len(self.taxonomy)
        cfg = self.config
        parts: list[tuple[str, np.ndarray, list[dict[str, Any]], np.ndarray]] = []
        sources = {k: v for k, v in (texts or {}).items() if v and v.strip()}
        langs = source_languages(sources, languages)
        text_emb = self.embed_sources(sources, langs) if sources else None
        text_scores = self.score_text(sources, text_emb, langs)
        if text_scores is not None:
            parts.append(("text", text_scores[0], text_scores[1], np.ones(n, bool)))
        parts += media_parts(self, features) if media is None else media
        tags = self.fuse(parts, top_k=cfg.top_k if top_k is None else top_k, head_input=head_input)
        text_items = [(k, v, e, langs[k], m) for (k, v), (m, e) in zip(sources.items(), text_emb)] if text_emb else []
        for t in tags:
            visual = t.evidence.get("visual", {}).get("imagenet")
            t.subtopics = self.subtopics.score(self._index[t.id], text_items, visual)
        return tags

    def head_scores(self, zero_shot: np.ndarray, head_input: np.ndarray) -> tuple[np.ndarray, dict[int, dict[str, Any]]]:
        """Replace the zero-shot scores of the head's categories by the (blended) head score.

        Returns:
            The new scores and, per category index the head scored, its ``"head"`` evidence.
        """
        head = self.head
        assert head is not None
        probs = head.predict_proba(head_input)[0]
        blend = self.config.head_blend
        out = zero_shot.copy()
        evidence: dict[int, dict[str, Any]] = {}
        for j, cid in enumerate(head.categories):
            c = self._index[cid]
            cal = float(head.calibrated(float(probs[j]), cid))
            out[c] = blend * cal + (1.0 - blend) * zero_shot[c]
            evidence[c] = {
                "prob": round(float(probs[j]), 4), "threshold": round(head.thresholds.get(cid, 0.5), 4),
                "calibrated": round(cal, 4), "zero_shot": round(float(zero_shot[c]), 4),
            }
        return out, evidence

    def fuse(
        self, parts: list[tuple[str, np.ndarray, list[dict[str, Any]], np.ndarray]], top_k: int, head_input: np.ndarray | None = None
    ) -> list[Tag]:
        """Weighted mean of per-modality scores over the modalities with a say, then the head if any."""
        n = len(self.taxonomy)
        num = np.zeros(n, np.float64)
        den = np.zeros(n, np.float64)
        for name, scores, _, say in parts:
            w = self.config.weights.get(name, 0.0) * say
            num += w * scores
            den += w
        fused = np.where(den > 0, num / np.maximum(den, 1e-9), 0.0)
        head_ev: dict[int, dict[str, Any]] = {}
        if self.head is not None and head_input is not None:
            fused, head_ev = self.head_scores(fused, head_input)
        order = np.argsort(-fused)
        if top_k:
            order = order[:top_k]
        tags = []
        for c in order:
            if fused[c] < self.config.min_score and top_k:
                continue
            cat = self.taxonomy.categories[c]
            evidence = {
                name: {"score": round(float(scores[c]), 4), **ev[c]} for name, scores, ev, say in parts if say[c]
            }
            if c in head_ev:
                evidence["head"] = head_ev[c]
            tags.append(Tag(cat.id, cat.name, float(fused[c]), evidence))
        return tags
