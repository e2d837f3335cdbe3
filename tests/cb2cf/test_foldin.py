"""Fold-in with exposed non-engaged users as zero targets, HKV confidences and a prior on the space's scale."""

from __future__ import annotations

import numpy as np
import pytest

from cb2cf.foldin import FoldInConfig, fold_in, hkv_confidence, scaled_strength


def test_negatives_pull_the_vector_away_known_answer() -> None:
    # A = lam I + u u^T + n n^T = 2 I; b = lam prior + u = (1, 1)  ->  v = (0.5, 0.5)
    prior = np.array([0.0, 1.0])
    v, blend = fold_in(prior, np.array([[1.0, 0.0]]), np.array([1.0]), 1.0, negatives=np.array([[0.0, 1.0]]))
    assert np.allclose(v, [0.5, 0.5]) and blend == pytest.approx(2 / 3)
    # without the negative the prior's axis keeps its value: A = diag(2, 1), v = (0.5, 1)
    v0, b0 = fold_in(prior, np.array([[1.0, 0.0]]), np.array([1.0]), 1.0)
    assert np.allclose(v0, [0.5, 1.0]) and b0 == pytest.approx(0.5)
    # c0 = 3: the negative counts three times: A = diag(2, 4), v = (0.5, 0.25)
    v3, _ = fold_in(prior, np.array([[1.0, 0.0]]), np.array([1.0]), 1.0, np.array([[0.0, 1.0]]), 3.0)
    assert np.allclose(v3, [0.5, 0.25])


def test_negatives_only_and_nothing_shown() -> None:
    prior = np.array([2.0, 0.0])
    v, blend = fold_in(prior, np.zeros((0, 2)), np.zeros(0), 1.0, negatives=np.array([[1.0, 0.0]]))
    assert np.allclose(v, [1.0, 0.0]) and blend == pytest.approx(0.5)  # (1 + 1) v0 = 2
    same, b = fold_in(prior, np.zeros((0, 2)), np.zeros(0), 1.0, negatives=np.zeros((0, 2)))
    assert np.allclose(same, prior) and b == 0.0


def test_closed_form_with_negatives() -> None:
    rng = np.random.default_rng(1)
    U, N, prior = rng.normal(size=(4, 6)), rng.normal(size=(9, 6)), rng.normal(size=6)
    w, lam, c0 = hkv_confidence(rng.uniform(1, 6, 4), 2.0), 5.0, 0.7
    v, _ = fold_in(prior, U, w, lam, N, c0)
    grad = lam * (v - prior) - (w[:, None] * U * (1 - U @ v)[:, None]).sum(0) + c0 * (N * (N @ v)[:, None]).sum(0)
    assert np.abs(grad).max() < 1e-4


def test_scale_and_confidence_helpers() -> None:
    U = np.array([[3.0, 4.0], [0.0, 0.0]])  # squared norms 25 and 0: mean 12.5
    assert scaled_strength(U, 2.0) == pytest.approx(25.0)
    assert np.allclose(hkv_confidence(np.array([0.0, 3.0]), 2.0), [1.0, 7.0])
    cfg = FoldInConfig(prior_scale=0.5, alpha=1.0)
    assert cfg.strength(U) == pytest.approx(6.25) and np.allclose(cfg.confidence(np.array([3.0])), [4.0])
    assert FoldInConfig(prior_strength=7.0).strength(U) == 7.0  # a fixed strength wins
    assert FoldInConfig().strength(U) == pytest.approx(125.0)  # default: ten average users
    with pytest.raises(ValueError):
        scaled_strength(U, 0.0)
    with pytest.raises(ValueError):
        hkv_confidence(np.ones(2), -1.0)
    with pytest.raises(ValueError):
        fold_in(np.zeros(2), np.zeros((0, 2)), np.zeros(0), 1.0, np.ones((1, 2)), -1.0)
