"""The taxonomy's text embeddings cached on disk are the arrays the encoder computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tagging.extractors.base import get_extractor
from tagging.tags.tagger import Tagger

TEXTS = ["cooking and recipes", "", "dogs, cats and other pets", "a football match"]


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TAGGING_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("name", ["text-e5", "text-minilm"])
def test_embed_fixed_equals_embed_texts_and_reads_its_file(cache: Path, name: str) -> None:
    ext = get_extractor(name)
    first = ext.embed_fixed(TEXTS)
    np.testing.assert_array_equal(first, ext.embed_texts(TEXTS))
    files = list((cache / "text-emb").glob("*.npy"))
    assert len(files) == 1 and name.replace("-", "") in files[0].name.replace("-", "")
    np.testing.assert_array_equal(ext.embed_fixed(TEXTS), first)  # from the file
    assert ext.embed_fixed(TEXTS[:2]).shape == (2, ext.dim)  # other texts, another file
    assert len(list((cache / "text-emb").glob("*.npy"))) == 2
    files[0].write_bytes(b"not an npy file")
    np.testing.assert_array_equal(ext.embed_fixed(TEXTS), first)  # damaged: recomputed and rewritten
    np.testing.assert_array_equal(np.load(files[0]), first)


def test_tags_are_the_same_from_the_cache(cache: Path) -> None:
    texts = {"caption": "Easy homemade pasta recipe, cooking dinner", "ocr": "receta fácil de pasta"}
    cold = Tagger().tag({}, texts)
    assert list((cache / "text-emb").glob("*.npy"))
    warm = Tagger().tag({}, texts)  # a new tagger reads the cached category and sub-topic rows
    assert [t.to_dict() for t in warm] == [t.to_dict() for t in cold]
