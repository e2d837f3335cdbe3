"""Predictor.recommend regressions: already-seen items excluded, new items scored with the vector given
(their current one), the per-tag diversity cap and the slate's tag coverage."""

from __future__ import annotations

import numpy as np
import pytest

from cb2cf.errors import ContentError
from cb2cf.predictor import Predictor, tag_coverage
from cb2cf.space import CFSpace


@pytest.fixture()
def pred() -> Predictor:
    """A user along axis 0; warm items w0..w9 with scores 1.0, 0.9, ... 0.1."""
    items = np.zeros((10, 3), np.float32)
    items[:, 0] = np.linspace(1.0, 0.1, 10)
    return Predictor(CFSpace("s", "1", ["u"], np.array([[1.0, 0, 0]]), [f"w{i}" for i in range(10)], items))


def test_items_the_user_interacted_with_are_not_recommended(pred: Predictor) -> None:
    r = pred.recommend("u", k=5, exclude=["w0", "w2"])
    assert list(r.ids) == ["w1", "w3", "w4", "w5", "w6"]


def test_new_items_are_scored_with_the_vector_given(pred: Predictor) -> None:
    prior = np.array([[0.05, 1.0, 0.0]], np.float32)  # placed away from the user
    current = np.array([[2.0, 0.0, 0.0]], np.float32)  # interactions moved it onto the user's axis
    assert "n0" not in list(pred.recommend("u", k=3, new_items=["n0"], new_vectors=prior, new_share=0).ids)
    r = pred.recommend("u", k=3, new_items=["n0"], new_vectors=current, new_share=0)
    assert r.ids[0] == "n0" and r.sources[0] == "new" and r.scores[0] == pytest.approx(2.0)


def test_no_tag_covers_more_than_its_share_and_coverage_is_reported(pred: Predictor) -> None:
    tags = {f"w{i}": ["music"] for i in range(6)} | {"w6": ["sports"], "w7": ["news"], "w8": ["sports", "music"]}
    r = pred.recommend("u", k=5, item_tags=tags, max_tag_share=0.4)  # at most 2 "music" items of 5
    assert list(r.ids) == ["w0", "w1", "w6", "w7", "w9"]
    cov = r.tag_coverage
    assert cov["distinct_tags"] == 3 and cov["per_tag"] == {"music": 2, "news": 1, "sports": 1}
    assert cov["max_tag_share"] == pytest.approx(0.4) and cov["tagged_items"] == 4
    uncapped = pred.recommend("u", k=5, item_tags=tags)
    assert list(uncapped.ids) == ["w0", "w1", "w2", "w3", "w4"] and uncapped.tag_coverage["max_tag_share"] == 1.0
    with pytest.raises(ContentError, match="max_tag_share"):
        pred.recommend("u", k=5, max_tag_share=0.0)


def test_tag_coverage_of_an_empty_list() -> None:
    assert tag_coverage([]) == {"distinct_tags": 0, "tagged_items": 0, "items": 0, "per_tag": {}, "max_tag_share": 0.0}
