"""Cold start on a synthetic CF space with planted clusters: seed audiences and the warm-up fold-in."""

from __future__ import annotations

import numpy as np
import pytest
from serving_helpers import planted_space

from cb2cf.audience import Audience, AudienceConfig
from tagging.store.interactions import FoldInConfig, InteractionStore, InvalidInteraction, fold_in


@pytest.fixture(scope="module")
def space():
    return planted_space(n_clusters=4, per_cluster=50, dim=8)


@pytest.fixture(scope="module")
def audience(space) -> Audience:
    return Audience(space, AudienceConfig(k=40, exploration=0.25, n_clusters=4, near_clusters=1, seed=0))


def _cluster(user_id: str) -> int:
    return int(user_id.split("_")[0][1:])


def test_kmeans_recovers_planted_clusters(audience: Audience, space) -> None:
    truth = np.array([_cluster(u) for u in space.user_ids])
    for c in range(4):  # each k-means cluster is exactly one planted cluster
        assert len(set(truth[audience.labels == c])) == 1
    assert audience.nearest_clusters(np.eye(8)[2]) == [int(audience.labels[truth == 2][0])]


def test_exploit_users_come_first_in_order(audience: Audience) -> None:
    item = np.eye(8)[2].astype(np.float32)
    users = audience.seed(item, exploration=0.0, k=10)
    assert [u["user_id"] for u in users] == [f"c2_u{i}" for i in range(10)]  # planted ranking
    assert all(u["reason"] == "score" for u in users)
    assert [u["score"] for u in users] == sorted((u["score"] for u in users), reverse=True)


def test_exploration_share_comes_from_other_clusters(audience: Audience) -> None:
    item = np.eye(8)[1].astype(np.float32)
    users = audience.seed(item)  # k=40, 25% exploration
    assert len(users) == 40 and len({u["user_id"] for u in users}) == 40
    exploit = [u for u in users if u["reason"] == "score"]
    explore = [u for u in users if u["reason"] == "exploration"]
    assert len(explore) == 10 and len(exploit) == 30
    assert all(_cluster(u["user_id"]) == 1 for u in exploit)
    assert all(_cluster(u["user_id"]) != 1 for u in explore)
    assert len({_cluster(u["user_id"]) for u in explore}) == 3  # spread over every far cluster
    assert audience.seed(item) == users  # deterministic per item
    assert audience.seed(item, seed=1) != users


def test_audience_validates_input(audience: Audience) -> None:
    with pytest.raises(ValueError):
        audience.seed(np.ones(3))
    with pytest.raises(ValueError):
        audience.seed(np.ones(8), exploration=1.5)
    assert all(u["user_id"] != "c0_u0" for u in audience.seed(np.eye(8)[0], exclude=["c0_u0"]))


def test_fold_in_limits() -> None:
    prior = np.array([1.0, 0.0, 0.0, 0.0], np.float32)
    v, blend = fold_in(prior, np.zeros((0, 4)), np.zeros(0), lam=10.0)
    assert np.allclose(v, prior) and blend == 0.0
    rng = np.random.default_rng(0)
    users = np.array([0.0, 1.0, 0.0, 0.0]) + rng.normal(scale=0.3, size=(500, 4))  # spread around e_1
    v, blend = fold_in(prior, users, np.full(500, 4.0), lam=10.0)
    assert blend > 0.99
    assert v @ np.eye(4)[1] / np.linalg.norm(v) > 0.95 and abs(v[0]) < 0.1  # the users' direction; the prior fades
    few, b_few = fold_in(prior, users[:2], np.ones(2), lam=10.0)
    assert 0 < b_few < blend and 0 < few[1] < v[1] and few[0] > 0.5  # a little evidence moves it a little


def test_fold_in_matches_closed_form() -> None:
    rng = np.random.default_rng(0)
    U, w, prior, lam = rng.normal(size=(7, 5)), rng.uniform(1, 4, 7), rng.normal(size=5), 3.0
    v, _ = fold_in(prior, U, w, lam)
    grad = lam * (v - prior) - (w[:, None] * U * (1 - U @ v)[:, None]).sum(0)  # d/dv of the objective / 2
    assert np.abs(grad).max() < 1e-4


def test_interactions_warm_up_the_item(tmp_path, space) -> None:
    store = InteractionStore(str(tmp_path / "db"), FoldInConfig(prior_strength=5.0))
    prior = np.eye(8)[0].astype(np.float32)
    cold = store.warm_vector("new-video", prior, space)
    assert cold["blend"] == 0.0 and np.allclose(cold["vector"], prior)
    events = [{"user_id": f"c3_u{i}", "event": e} for i in range(20) for e in ("view", "completion", "like")]
    assert store.record("new-video", events + [{"user_id": "someone-new", "event": "share"}]) == 61
    assert store.weights("new-video")["c3_u0"] == 6.0  # 1 + 2 + 3
    warm = store.warm_vector("new-video", prior, space)
    assert warm["users"] == 20 and warm["unknown_users"] == 1 and warm["blend"] > 0.9
    v = np.array(warm["vector"])
    fans = space.user_vectors[[space.user_index(f"c3_u{i}") for i in range(20)]]
    assert v[3] > 0.9 and (fans @ v).mean() > 0.9  # now scores high with the users who engaged (was ~0)
    assert (fans @ prior).mean() < 0.1
    with pytest.raises(InvalidInteraction):
        store.record("new-video", [{"user_id": "u", "event": "dislike"}])
    with pytest.raises(InvalidInteraction):
        store.record("new-video", [{"user_id": "u", "event": "view", "weight": -1}])
