"""Sub-topics: the second label level under each returned tag, from texts and ImageNet classes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tagging.extractors.base import AudioCues, ClassHit, Features, FrameCues
from tagging.tags.tagger import Tagger
from tagging.tags.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger()


def test_every_category_has_subtopics_and_descriptions() -> None:
    for cat in load_taxonomy().categories:
        assert cat.subtopics and len(cat.description) > 20 and len(cat.prompts) >= 3


def test_caption_selects_subtopics(tagger: Tagger) -> None:
    tags = tagger.tag({}, {"caption": "Street dance battle in the park #hiphop"})
    top = tags[0]
    assert top.id == "dance"
    assert top.subtopics[0] == {"name": "street dance", "score": 0.9, "source": "caption"}  # named outright
    assert all(s["score"] >= tagger.subtopics.threshold(tagger.scorer("en")) for s in top.subtopics)
    assert len(top.subtopics) <= tagger.config.subtopics.max_per_tag
    assert "subtopics" in top.to_dict() and json.dumps([t.to_dict() for t in tags])


def test_similar_text_and_visual_classes_select_subtopics(tagger: Tagger) -> None:
    food = next(t for t in tagger.tag({}, {"transcript": "today I'm making a chocolate cake in the oven"}) if t.id == "food")
    assert food.subtopics and food.subtopics[0]["name"] == "baking" and food.subtopics[0]["source"] == "transcript"
    probs = np.zeros(1000, np.float32)
    probs[207] = 0.8  # golden retriever
    frames = Features("effnet-lite0@1+x", "frames", np.ones(1280, np.float32) / np.sqrt(1280),
                      FrameCues(imagenet_probs=probs, top_classes=[ClassHit("golden retriever", 0.8, 2.0)]))
    animals = next(t for t in tagger.tag({"frames": frames}, {}, top_k=0) if t.id == "animals")
    assert animals.subtopics[0]["name"] == "dogs"
    assert animals.subtopics[0]["source"] == "visual" and animals.subtopics[0]["class"] == "golden retriever"
    assert animals.subtopics[0]["timestamp"] == 2.0


def test_no_support_no_subtopics(tagger: Tagger) -> None:
    audio = Features("a", "audio", np.ones(4, np.float32) / 2, AudioCues(music_score=0.9, speech_ratio=0.0))
    assert all(t.subtopics == [] for t in tagger.tag({"audio": audio}, {}, top_k=0))
    unrelated = tagger.tag({}, {"caption": "Easy homemade pasta recipe"})
    assert all(s["name"] != "street dance" for t in unrelated for s in t.subtopics)
