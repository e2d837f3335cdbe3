"""Taxonomy loading and the tag output: shape, ranges, evidence, fusion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tagging.errors import TaxonomyError
from tagging.extractors.base import AudioCues, ClassHit, Features, FrameCues
from tagging.tags.tagger import Tagger
from tagging.tags.taxonomy import REQUIRED_DEFAULT_IDS, load_taxonomy


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    t = Tagger()
    t.prepare()
    return t


def test_default_taxonomy_has_required_ids() -> None:
    tax = load_taxonomy()
    assert set(REQUIRED_DEFAULT_IDS) <= set(tax.ids)
    for cat in tax.categories:
        assert cat.name and cat.description and cat.prompts


def test_custom_taxonomy_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "tax.json"
    f.write_text(json.dumps({"name": "mini", "categories": [{"id": "cats", "name": "Cats", "description": "cats and kittens"},
                                                            {"id": "cars", "name": "Cars", "description": "cars and driving"}]}))
    tax = load_taxonomy(f)
    assert tax.ids == ["cats", "cars"] and tax.taxonomy_id.startswith("mini@1+")
    tags = Tagger(tax).tag({}, {"caption": "my kitten sleeping on the sofa"}, top_k=0)
    assert [t.id for t in tags][0] == "cats"
    f.write_text(json.dumps({"categories": [{"id": "a"}, {"id": "a"}]}))
    with pytest.raises(TaxonomyError, match="duplicate"):
        load_taxonomy(f)
    f.write_text("{not json")
    with pytest.raises(TaxonomyError, match="malformed"):
        load_taxonomy(f)
    with pytest.raises(TaxonomyError):
        load_taxonomy(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "caption, expected",
    [
        ("Easy homemade pasta recipe, cooking dinner in my kitchen", "food"),
        ("My golden retriever puppy playing fetch", "animals"),
        ("Full body workout at the gym, 20 minute HIIT", "fitness"),
        ("Unboxing the new smartphone: camera and battery review", "technology"),
    ],
)
def test_caption_drives_text_tags(tagger: Tagger, caption: str, expected: str) -> None:
    tags = tagger.tag({}, {"caption": caption})
    assert tags[0].id == expected
    assert tags[0].evidence["text"]["source"] == "caption"


def test_tag_shape_scores_and_evidence(tagger: Tagger) -> None:
    probs = np.zeros(1000, np.float32)
    probs[402] = 0.9  # acoustic guitar
    probs[0] = 0.1
    frames = Features("effnet-lite0@1+x", "frames", np.ones(1280, np.float32) / np.sqrt(1280),
                      FrameCues(imagenet_probs=probs, top_classes=[ClassHit("acoustic guitar", 0.9, 1.5)]))
    audio = Features("audio-librosa@1+x", "audio", np.ones(193, np.float32) / np.sqrt(193), AudioCues(music_score=0.9, speech_ratio=0.0))
    tags = tagger.tag({"frames": frames, "audio": audio}, {"caption": "playing my new song on guitar"}, top_k=0)
    assert len(tags) == len(tagger.taxonomy)
    scores = [t.score for t in tags]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    top = tags[0]
    assert top.id == "music"
    assert set(top.evidence) == {"text", "visual", "audio"}
    assert top.evidence["visual"]["imagenet"][0]["class"] == "acoustic guitar"
    assert top.evidence["visual"]["imagenet"][0]["timestamp"] == 1.5
    assert top.evidence["audio"]["music"] == 0.9
    json.dumps([t.to_dict() for t in tags])  # evidence is JSON-serialisable


def test_missing_modalities_abstain(tagger: Tagger) -> None:
    """With only audio, categories without audio cues get no score rather than a fake zero vote."""
    audio = Features("a", "audio", np.ones(4, np.float32) / 2, AudioCues(music_score=0.0, speech_ratio=1.0))
    tags = tagger.tag({"audio": audio}, {}, top_k=0)
    top = tags[0]
    assert top.id == "talk" and top.score == pytest.approx(1.0)
    assert all(set(t.evidence) <= {"audio"} for t in tags)
    assert tagger.tag({}, {}) == []
