"""Top-k ranking metrics for the cold-start protocol.

For each evaluated user (>= 1 relevant item), items are ranked by score and
Recall@k = hits@k / |relevant|, Precision@k = hits@k / k,
NDCG@k = DCG@k / IDCG@k with binary gains and IDCG over min(k, |relevant|) items.
Metrics are averaged over users.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from cb2cf.errors import ContentError


class ScoredItems(Protocol):
    """Items with content and the users who interacted with them (e.g. :class:`cb2cf.train.ItemSet`)."""

    item_ids: np.ndarray
    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    interactions: sp.spmatrix | None


class Predicts(Protocol):
    """A content -> CF vector model (e.g. :class:`cb2cf.model.CB2CF`)."""

    def predict(self, features: Mapping[str, Any], masks: Mapping[str, Any] | None = None) -> np.ndarray: ...


def rank_metrics(scores: np.ndarray, truth: sp.spmatrix, ks: tuple[int, ...] = (10, 20),
                 precision_ks: tuple[int, ...] = (20,)) -> dict[str, float]:
    """Average Recall/NDCG/Precision over users with at least one relevant item.

    Args:
        scores: (n_users, n_items) scores; higher is better.
        truth: (n_users, n_items) sparse matrix; nonzero = relevant.
        ks: Cut-offs for recall and NDCG.
        precision_ks: Cut-offs for precision.

    Returns:
        ``{"recall@10": ..., "ndcg@10": ..., "precision@20": ..., "users": n}``.

    Raises:
        ValueError: Shapes differ.
    """
    truth = sp.csr_matrix(truth)
    if scores.shape != truth.shape:
        raise ValueError(f"scores {scores.shape} and truth {truth.shape} differ")
    n_rel = np.diff(truth.indptr)
    users = np.flatnonzero(n_rel > 0)
    kmax = max(ks + precision_ks)
    out: dict[str, float] = {"users": int(len(users))}
    if len(users) == 0:
        return out | {f"recall@{k}": 0.0 for k in ks} | {f"ndcg@{k}": 0.0 for k in ks}
    s = scores[users]
    kk = min(kmax, s.shape[1])
    top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
    order = np.argsort(-np.take_along_axis(s, top, 1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, 1)
    rel = truth[users]
    hits = np.asarray(rel[np.arange(len(users))[:, None], top].todense()) > 0  # (U, kk)
    disc = 1.0 / np.log2(np.arange(2, kk + 2))
    nr = n_rel[users]
    for k in ks:
        h = hits[:, :k]
        out[f"recall@{k}"] = float(np.mean(h.sum(1) / nr))
        idcg = np.array([disc[: min(k, r)].sum() for r in nr])
        out[f"ndcg@{k}"] = float(np.mean((h * disc[: h.shape[1]]).sum(1) / idcg))
    for k in precision_ks:
        out[f"precision@{k}"] = float(np.mean(hits[:, :k].sum(1) / k))
    return out


def audience_metrics(scores: np.ndarray, truth: sp.spmatrix, ks: tuple[int, ...] = (20, 50)) -> dict[str, float]:
    """The other direction of :func:`rank_metrics`: all users ranked for each item (who to seed it to).

    Args:
        scores: (n_users, n_items) scores, as for :func:`rank_metrics`.
        truth: (n_users, n_items) relevance.
        ks: Cut-offs for recall and NDCG.

    Returns:
        ``{"recall@k": ..., "ndcg@k": ..., "users": n}``, averaged over items with at least
        one relevant user (``users`` counts those items).

    Raises:
        ValueError: Shapes differ.
    """
    return rank_metrics(np.asarray(scores).T, sp.csr_matrix(truth).T, ks=ks, precision_ks=())


def evaluate(model: Predicts, space_users: np.ndarray, items: ScoredItems, k: int = 20,
             audience_k: int = 50) -> dict[str, float]:
    """How well the predicted vectors rank, both ways.

    Returns:
        ``recall@k``/``ndcg@k``/...: ``items`` ranked for each user who interacted with one
        of them (recommendation); ``audience_recall@audience_k``/``audience_ndcg@...``:
        all users ranked for each item with users (seeding a first audience).

    Raises:
        ContentError: ``items`` has no interactions.
    """
    if items.interactions is None:
        raise ContentError("evaluation needs the items' interactions")
    pred = model.predict(items.features, items.masks)
    S = space_users @ pred.T
    out = rank_metrics(S, items.interactions, ks=(10, k), precision_ks=(k,))
    aud = audience_metrics(S, items.interactions, (audience_k,))
    return out | {f"audience_{m}": v for m, v in aud.items()}


def validation_problems(val: ScoredItems | None, min_items: int = 30, min_users: int = 10) -> list[str]:
    """Why the validation items cannot select a deployable model (empty when they can).

    Early stopping and the ridge alpha are chosen on the validation items; with fewer
    than ``min_items`` items, or fewer than ``min_users`` users who
    interacted with them, that choice is noise (13 items once gave "best epoch -1" and a
    validation Recall of 1.0 on one item).
    """
    if val is None or val.interactions is None:
        return ["no validation items with interactions"]
    R = sp.csr_matrix(val.interactions)
    n_items, n_users = len(val.item_ids), int((np.diff(R.indptr) > 0).sum())
    problems = []
    if n_items < min_items:
        problems.append(f"{n_items} validation items (need >= {min_items})")
    if n_users < min_users:
        problems.append(f"{n_users} users with a validation interaction (need >= {min_users})")
    return problems
