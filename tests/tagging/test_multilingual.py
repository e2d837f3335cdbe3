"""Captions, transcripts and on-screen text in other languages (issue 14), with the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tagging.errors import TaxonomyError
from tagging.extractors import get_extractor
from tagging.extractors.text import DEFAULT_TEXT_EXTRACTOR
from tagging.language import LANGUAGES, detect_language, keyword_pattern, normalize
from tagging.pipeline import PipelineConfig
from tagging.tags.tagger import Tagger
from tagging.tags.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger()


@pytest.mark.parametrize("text, code", [
    ("我的狗狗在公园里追球", "zh"),
    ("recette facile de crêpes pour le goûter", "fr"),
    ("receta fácil de tortilla española", "es"),
    ("周末练舞 #dancechallenge #kpop", "zh"),  # English hashtags do not decide
    ("tocando batería en casa #drums #drumcover", "es"),
    ("Sunday pancake flip attempt, it almost landed", "en"),
])
def test_detect_language(text: str, code: str) -> None:
    lang = detect_language(text)
    assert lang is not None and lang.code == code and 0.0 < lang.probability <= 1.0
    assert lang.code in LANGUAGES


def test_no_letters_no_language() -> None:
    assert detect_language("") is None and detect_language("2026 !!") is None
    assert detect_language("#doglife #barking").code == "en"  # hashtags only: they are the text


def test_keyword_patterns_across_scripts() -> None:
    assert keyword_pattern("狗").search(normalize("我的狗狗在公园里"))  # no spaces in Chinese
    assert keyword_pattern("danse").search(normalize("Cours de DANSE ce soir"))
    assert not keyword_pattern("danse").search(normalize("dansez maintenant"))
    assert keyword_pattern("café").search(normalize("un CAFÉ noir"))
    assert not keyword_pattern("art").search(normalize("party time"))
    assert keyword_pattern("dance").search(normalize("#dance #tiktokdance"))


def test_taxonomy_names_per_language(tmp_path: Path) -> None:
    dance = load_taxonomy()["dance"]
    assert "舞蹈" in dance.keywords("zh") and "舞蹈" not in dance.keywords("en")
    assert {"street dance", "dance"} <= dance.keywords("fr") and "danse de rue" in dance.keywords("fr")
    assert dance.subtopic_words(1, "zh") == ["street dance", "街舞"]
    f = tmp_path / "tax.json"
    f.write_text(json.dumps({"categories": [{"id": "cats", "subtopics": ["kittens"], "subtopic_names": {"fr": []}}]}))
    with pytest.raises(TaxonomyError, match="subtopic_names"):
        load_taxonomy(f)


def test_multilingual_extractors_match_across_languages() -> None:
    for name in ("text-muse", "text-e5"):
        ext = get_extractor(name)
        v = ext.embed_texts(["我的狗狗在公园里追球", "mon chien court après la balle au parc", "stock market crash", ""])
        assert v.shape == (4, ext.dim) and not v[3].any()
        assert float(v[0] @ v[1]) > float(v[0] @ v[2]), name  # the same meaning across languages is closer


def test_chinese_keyword_and_language_in_evidence(tagger: Tagger) -> None:
    tags = tagger.tag({}, {"caption": "街舞比赛前最后一次排练"}, top_k=3)
    dance = next(t for t in tags if t.id == "dance")
    ev = dance.evidence["text"]
    assert ev["language"] == "zh" and ev["snippet"] == "街舞比赛前最后一次排练"
    assert "街舞" in ev.get("keywords", []) or dance.subtopics[0].get("word") == "街舞"  # the original words


def test_transcript_language_is_kept(tagger: Tagger) -> None:
    tags = tagger.tag({}, {"transcript": "aujourd'hui je vous montre ma recette de crêpes"}, top_k=3,
                      languages={"transcript": "fr"})
    food = next(t for t in tags if t.id == "food")
    assert food.evidence["text"]["source"] == "transcript" and food.evidence["text"]["language"] == "fr"


@pytest.mark.parametrize("caption, expected", [
    ("我的狗狗在公园里追球", "animals"),
    ("recette facile de crêpes pour le goûter", "food"),
    ("tocando batería en casa con mi hermano #drumcover", "music"),
])
def test_caption_in_another_language_end_to_end(pipeline, clips: dict[str, Path], caption: str, expected: str) -> None:
    """The shipped default pipeline, a real clip and a Chinese, French or mixed caption: right category in the top 3."""
    assert pipeline.config.text_extractor == DEFAULT_TEXT_EXTRACTOR == PipelineConfig().text_extractor
    r = pipeline.analyze(clips["good"], caption=caption)
    top3 = [t.id for t in r.tags[:3]]
    assert expected in top3, (caption, [(t.id, round(t.score, 3)) for t in r.tags])
    tag = next(t for t in r.tags if t.id == expected)
    assert tag.evidence["text"]["source"] == "caption" and tag.evidence["text"]["snippet"] == caption
    assert r.features["text"].present and np.isclose(np.linalg.norm(r.features["text"].vector), 1.0, atol=1e-4)
    assert r.extractors["text"].startswith(DEFAULT_TEXT_EXTRACTOR + "@")
