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


def test_text_extractor_change_refuses_old_models_and_redoes_rows(pipeline, clips: dict[str, Path], tmp_path: Path) -> None:
    """A catalog and a CB2CF model made with MiniLM text: the multilingual default refuses the model
    (the existing clear error) and the backfill plans the MiniLM rows again; the table's dims still fit."""
    import torch

    from cb2cf import CB2CF
    from tagging import coldstart
    from tagging.errors import ModelLoadError
    from tagging.pipeline import Pipeline
    from tagging.serving.backfill.run import plan
    from tagging.serving.backfill.sources import Item
    from tagging.store.catalog import Catalog
    from tagging.store.failures import FailureLog

    old = Pipeline(PipelineConfig(text_extractor="text-minilm"))
    assert old.versions["text"] != pipeline.versions["text"]
    assert {k: v for k, v in old.versions.items() if k != "text"} == {k: v for k, v in pipeline.versions.items() if k != "text"}
    torch.manual_seed(0)
    model = CB2CF({m: e.dim for m, e in old.extractors.items()}, cf_dim=8, tower_dim=8, hidden_dim=16)
    model.manifest = {"name": "old", "views": [{"name": m, "dim": e.dim, "extractor_id": e.extractor_id}
                                               for m, e in old.extractors.items()]}
    model.eval().save(tmp_path / "model")
    coldstart.load_model(tmp_path / "model", old.extractors)  # fits the pipeline it was made for
    with pytest.raises(ModelLoadError, match="text"):
        coldstart.load_model(tmp_path / "model", pipeline.extractors)
    db = tmp_path / "db"
    old.ingest([{"path": clips["good"], "video_id": "v1"}], db)
    catalog = Catalog(db, dims=pipeline.dims())  # same 384-d text column: the table is reused
    items = [Item(str(clips["good"]), video_id="v1")]
    full, cf_only, text_only, report = plan(items, catalog, FailureLog(str(db)), old.versions, None, False)
    assert report.done == 1 and not full and not text_only
    full, cf_only, text_only, report = plan(items, catalog, FailureLog(str(db)), pipeline.versions, None, False)
    assert [it.video_id for it in text_only] == ["v1"] and not full and not cf_only and report.done == 0
    # without the text-only refresh (an analyser that is not a Pipeline) the row is redone in full
    full, cf_only, text_only, report = plan(items, catalog, FailureLog(str(db)), pipeline.versions, None, False, False)
    assert [it.video_id for it in full] == ["v1"] and not text_only
