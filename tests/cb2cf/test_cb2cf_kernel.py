"""CB2CF's kernel ridge start (cb2cf.kernel) on a synthetic world a linear map cannot fit.

Items fall into 40 clusters; an item's taste vector is its cluster's (random), and its
content is its cluster's position in a 6-d content space plus noise. With more clusters
than content dimensions, no linear map from content to taste fits; a local (kernel) map
does. The known answer: the kernel start must win validation there and rank test items
better than the ridge start; where it cannot beat ridge, ridge is kept exactly.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from cb2cf import CB2CF, ItemSet, SpaceConfig, TrainConfig, ViewSpec, train_cb2cf, train_space
from cb2cf.interactions import Interactions
from cb2cf.kernel import kernel_start
from cb2cf.metrics import rank_metrics
from cb2cf.ridge import ridge_fit, ridge_predict

N_USERS, N_ITEMS, N_CLUSTERS, LATENT = 200, 480, 40, 8


@pytest.fixture(scope="module")
def world() -> dict:
    rng = np.random.default_rng(3)
    cluster = rng.integers(0, N_CLUSTERS, N_ITEMS)
    taste = rng.normal(size=(N_CLUSTERS, LATENT))
    zu = rng.normal(size=(N_USERS, LATENT))
    logits = zu @ taste[cluster].T / np.sqrt(LATENT) * 2.5 - 2.5
    R = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    where = rng.normal(size=(N_CLUSTERS, 6))
    feats = {"a": (where[cluster] + 0.05 * rng.normal(size=(N_ITEMS, 6))).astype(np.float32),
             "b": rng.normal(size=(N_ITEMS, 3)).astype(np.float32)}  # a view that carries nothing
    ids, users = np.array([f"i{j}" for j in range(N_ITEMS)]), np.array([f"u{j}" for j in range(N_USERS)])
    perm = rng.permutation(N_ITEMS)
    warm, val, test = np.sort(perm[:320]), np.sort(perm[320:400]), np.sort(perm[400:])
    space = train_space(Interactions(users, ids[warm], sp.csr_matrix(R[:, warm])),
                        SpaceConfig(factors=16, iterations=10, num_threads=1), space_id="clusters")

    def items(rows: np.ndarray) -> ItemSet:
        return ItemSet(ids[rows], {k: v[rows] for k, v in feats.items()}, {}, sp.csr_matrix(R[:, rows]))

    cfg = TrainConfig(name="clusters", tower_dim=16, hidden_dim=32, batch_size=64, max_epochs=3, patience=2, seed=0)
    return {"space": space, "items": items, "warm": warm, "val": val, "test": test, "cfg": cfg,
            "specs": [ViewSpec("a", 6, "clusters-a@1"), ViewSpec("b", 3, "clusters-b@1")]}


def _test_recall(w: dict, model: CB2CF) -> float:
    t = w["items"](w["test"])
    return rank_metrics(w["space"].user_vectors @ model.predict(t.features).T, t.interactions)["recall@20"]


def test_kernel_start_wins_where_a_linear_map_cannot_fit(world: dict, tmp_path) -> None:
    w = world
    train, val = w["items"](w["warm"]), w["items"](w["val"])
    kern, _ = train_cb2cf(train, w["space"], w["cfg"], val, w["specs"])
    lin, _ = train_cb2cf(train, w["space"], replace(w["cfg"], kernel_landmarks=0), val, w["specs"])
    assert kern.kernel is not None and kern.kernel_landmarks == len(w["warm"])  # fewer warm items than 2000
    assert lin.kernel is None
    assert kern.manifest["metrics"]["val_recall@20"] > lin.manifest["metrics"]["val_recall@20"]
    r_kern, r_lin = _test_recall(w, kern), _test_recall(w, lin)
    assert r_kern > 1.2 * r_lin, (r_kern, r_lin)
    kern.save(tmp_path / "m")  # the kernel path (landmarks, coefficients, gamma, scale) travels with the weights
    loaded = CB2CF.load(tmp_path / "m", expected_views={s.name: s for s in w["specs"]})
    t = w["items"](w["test"])
    np.testing.assert_array_equal(loaded.predict(t.features), kern.predict(t.features))


def test_ridge_is_kept_when_the_kernel_does_not_beat_it(world: dict) -> None:
    w = world
    train = w["items"](w["warm"])
    model = CB2CF({"a": 6, "b": 3}, w["space"].dim, 16, 32, kernel_landmarks=50)
    X = np.hstack([train.features["a"], train.features["b"]])
    Y = w["space"].item_vectors[[w["space"].item_index(i) for i in train.item_ids]]
    W = ridge_fit(X, Y, 1.0)
    model.set_linear_map(W)
    x = {k: torch.from_numpy(v) for k, v in train.features.items()}
    m = {k: torch.ones(len(v), dtype=torch.bool) for k, v in train.features.items()}
    scores = iter([0.5, 0.4, 0.3])  # the ridge start, then each grid entry: none beats the floor
    chosen = kernel_start(model, W, x, m, Y, ((1.0, 1.0), (2.0, 0.3)), 0, lambda: next(scores))
    assert chosen is None and model.kernel is None and model.kernel_landmarks == 0
    np.testing.assert_allclose(model.predict(train.features), ridge_predict(W, X), atol=1e-5)
    assert "kernel" not in "".join(model.state_dict())


def test_the_fit_in_row_chunks_equals_the_fit_in_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    """K_nm is accumulated chunk by chunk (memory bounded for any catalog); the solution does not change."""
    import cb2cf.kernel as kernel_mod

    rng = np.random.default_rng(0)
    z = torch.from_numpy(rng.standard_normal((300, 6)).astype(np.float32))
    y = rng.standard_normal((300, 4)).astype(np.float32)
    rows = kernel_mod.landmark_rows(300, 50, seed=0)
    whole, chunked = (kernel_mod.KernelPath({"v": 6}, 4, 50) for _ in range(2))
    whole.fit(z, y, rows, gamma=1.0, lam=0.5)
    monkeypatch.setattr(kernel_mod, "FIT_CHUNK", 7)
    chunked.fit(z, y, rows, gamma=1.0, lam=0.5)
    out = {"v": z}, {"v": torch.ones(300)}
    assert torch.allclose(whole(*out), chunked(*out), rtol=1e-3, atol=1e-3)  # the same map
    assert torch.allclose(whole.coef, chunked.coef, rtol=1e-3, atol=1e-3)


def test_projection_weight_zero_is_the_plain_kernel_and_the_choice_is_recorded(world: dict, tmp_path: Path) -> None:
    """beta = 0 adds zero columns: the same map as a path without projection; beta > 0 travels with the model."""
    w = world
    train = w["items"](w["warm"])
    X = np.hstack([train.features["a"], train.features["b"]])
    Y = w["space"].item_vectors[[w["space"].item_index(i) for i in train.item_ids]]
    W = ridge_fit(X, Y, 1.0)
    x = {k: torch.from_numpy(v) for k, v in train.features.items()}
    m = {k: torch.ones(len(v), dtype=torch.bool) for k, v in train.features.items()}
    plain = CB2CF({"a": 6, "b": 3}, w["space"].dim, 16, 32, kernel_landmarks=50)
    proj = CB2CF({"a": 6, "b": 3}, w["space"].dim, 16, 32, kernel_landmarks=50, kernel_projection=True)
    for model in (plain, proj):
        model.set_linear_map(W)
        kernel_start(model, W, x, m, Y, ((1.0, 1.0),), 0, None)
    np.testing.assert_allclose(proj.predict(train.features), plain.predict(train.features), atol=1e-4)
    scores = iter([0.1, 0.2, 0.5])  # ridge, beta 0, beta 1: the projected fit wins
    chosen = kernel_start(proj, W, x, m, Y, ((1.0, 1.0),), 0, lambda: next(scores), betas=(0.0, 1.0))
    assert chosen is not None and chosen.beta == 1.0 and chosen.score == 0.5
    assert float(proj.kernel.proj_weight) > 0
    with pytest.raises(ValueError, match="projection=True"):
        kernel_start(plain, W, x, m, Y, ((1.0, 1.0),), 0, None, betas=(0.5,))
    proj.save(tmp_path / "p")
    loaded = CB2CF.load(tmp_path / "p")
    assert loaded.kernel_projection
    np.testing.assert_array_equal(loaded.predict(train.features), proj.predict(train.features))


def test_training_records_its_start_in_the_manifest(world: dict) -> None:
    """The kept start (kind, gamma, lam, beta, score) is in the manifest; without validation it is unscored."""
    w = world
    model, _ = train_cb2cf(w["items"](w["warm"]), w["space"], replace(w["cfg"], max_epochs=0),
                           w["items"](w["val"]), w["specs"])
    start = model.manifest["metrics"]["start"]
    assert start["kind"] == "kernel" and start["beta"] in w["cfg"].kernel_betas and start["gamma"] > 0
    unvalidated, _ = train_cb2cf(w["items"](w["warm"]), w["space"], replace(w["cfg"], max_epochs=0), None, w["specs"])
    start = unvalidated.manifest["metrics"]["start"]
    assert start["score"] is None and start["beta"] == 0.0 and not unvalidated.kernel_projection
