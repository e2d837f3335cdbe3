"""Top-k ranking metrics for the cold-start protocol.

For each evaluated user (>= 1 relevant item), items are ranked by score and
Recall@k = hits@k / |relevant|, Precision@k = hits@k / k,
NDCG@k = DCG@k / IDCG@k with binary gains and IDCG over min(k, |relevant|) items.
Metrics are averaged over users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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
