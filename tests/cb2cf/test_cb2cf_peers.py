"""The published cold-start peers and magnitude scaling on synthetic data with a known structure."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from cb2cf.bench.peers import PEERS, PeerConfig, PeerData, fit_peer, magnitude_scale, run_peer, select_magnitude
from cb2cf.errors import TrainingError
from cb2cf.interactions import Interactions
from cb2cf.metrics import rank_metrics
from cb2cf.space import SpaceConfig, train_space

N_USERS, N_ITEMS, LATENT = 150, 420, 8


@pytest.fixture(scope="module")
def world() -> tuple[PeerData, sp.csr_matrix]:
    """Users and items share a latent taste space; the content is a noisy linear map of the item factors."""
    rng = np.random.default_rng(0)
    zu, zi = rng.normal(size=(N_USERS, LATENT)), rng.normal(size=(N_ITEMS, LATENT))
    logits = zu @ zi.T / np.sqrt(LATENT) * 2.0 + rng.normal(size=N_ITEMS) - 3.0
    R = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    X = (zi @ rng.normal(size=(LATENT, 32)) + 0.3 * rng.normal(size=(N_ITEMS, 32))).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    warm, val, test = np.arange(300), np.arange(300, 360), np.arange(360, N_ITEMS)
    ids = np.array([f"i{j}" for j in range(N_ITEMS)])
    space = train_space(Interactions(np.array([f"u{j}" for j in range(N_USERS)]), ids[warm], sp.csr_matrix(R[:, warm])),
                        SpaceConfig(factors=16, iterations=10, num_threads=1), space_id="synthetic")
    data = PeerData(X[warm], X[val], X[test], space.user_vectors, space.item_vectors,
                    sp.csr_matrix(R[:, warm]), sp.csr_matrix(R[:, val]))
    return data, sp.csr_matrix(R[:, test])


@pytest.fixture(scope="module")
def data(world: tuple[PeerData, sp.csr_matrix]) -> PeerData:
    return world[0]


@pytest.mark.parametrize("name", sorted(PEERS))
def test_each_peer_recovers_the_structure_better_than_random(world: tuple[PeerData, sp.csr_matrix],
                                                            name: str) -> None:
    data, truth = world
    res = run_peer(name, data, PeerConfig(hidden_dim=64, batch_size=64, max_epochs=15, patience=5))
    ours = rank_metrics(res.users @ res.test.T, truth)["ndcg@10"]
    rnd = rank_metrics(np.random.default_rng(1).random(truth.shape), truth)["ndcg@10"]
    assert ours > 1.5 * rnd, (name, ours, rnd)
    assert res.info["stopped_by"] in ("patience", "max_epochs") and 0 <= res.info["best_epoch"] < 15
    assert res.info["val_recall@20"] > 0 and res.warm_norm > 0 and res.users.shape[0] == N_USERS


def test_magnitude_scaling_pulls_norms_toward_the_warm_mean() -> None:
    P = np.array([[3.0, 4.0], [0.0, 1.0]], np.float32)  # norms 5 and 1
    assert np.allclose(magnitude_scale(P, 2.0, 0.0), P)
    out = magnitude_scale(P, 2.0, 1.0)  # (5 + 2) / 2 = 3.5, (1 + 2) / 2 = 1.5
    assert np.allclose(np.linalg.norm(out, axis=1), [3.5, 1.5])
    assert np.allclose(out[0] / 3.5, P[0] / 5)  # direction kept
    assert np.allclose(np.linalg.norm(magnitude_scale(P, 2.0, 1e9), axis=1), 2.0, atol=1e-5)


def test_magnitude_selection_uses_validation(data: PeerData) -> None:
    # vectors whose norms are noise: validation prefers pulling them to the warm mean
    rng = np.random.default_rng(3)
    truth_dir = data.X_val @ np.linalg.lstsq(data.X_warm, data.V, rcond=None)[0]
    noisy = truth_dir / np.linalg.norm(truth_dir, axis=1, keepdims=True) * rng.uniform(0.01, 10, (len(truth_dir), 1))
    mu = float(np.linalg.norm(data.V, axis=1).mean())
    a, r = select_magnitude(data.U, noisy.astype(np.float32), data.R_val, mu)
    r0 = rank_metrics(data.U @ noisy.T, data.R_val)["recall@20"]
    assert a > 0 and r >= r0


class _Diverges(torch.nn.Module):
    """A peer whose loss is NaN: reported as a TrainingError naming the method."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def batches(self, data, gen, batch_size):  # noqa: ANN001, ANN201
        return [np.arange(4)]

    def loss(self, batch, data, gen):  # noqa: ANN001, ANN201
        return self.w.sum() * float("nan")

    def user_vectors(self, U):  # noqa: ANN001, ANN201
        return U

    def item_vectors(self, X):  # noqa: ANN001, ANN201
        return X

    def warm_item_vectors(self, X, V):  # noqa: ANN001, ANN201
        return V


def test_a_diverging_peer_raises_a_training_error(data: PeerData) -> None:
    with pytest.raises(TrainingError, match="broken: loss is nan at epoch 0"):
        fit_peer("broken", _Diverges(), data, PeerConfig(max_epochs=3))
