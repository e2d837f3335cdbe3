"""Fold-in: an item's CF vector moves from its content placement to what interactions say.

The item vector is a *fold-in* of the interacting users' vectors
against the CB2CF prediction as a prior::

    v_post = argmin_v  lam * ||v - v_prior||^2 + sum_u w_u (1 - u . v)^2
           = (lam * I + sum_u w_u u u^T)^-1 (lam * v_prior + sum_u w_u u)

``w_u`` sums the event weights of user ``u`` on the item (default view 1,
completion 2, like 3, share 4). With no events ``v_post = v_prior``; as evidence
grows the data term dominates and ``v_post`` approaches the least-squares fit to
the interacting users (the ALS item update for implicit feedback with all
confidences on the observed users). Directions that no interacting user spans
keep the prior's value, so a handful of similar users moves the vector only within
their span. The reported *blend* is ``W / (W + lam)`` with
``W = sum_u w_u ||u||^2``: 0 = pure prediction, -> 1 = learned from interactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FoldInConfig:
    """Fold-in settings.

    Attributes:
        event_weights: Weight of each event kind.
        prior_strength: ``lam``: how many units of evidence the CB2CF prior is worth.
    """

    event_weights: dict[str, float] = field(default_factory=lambda: {"view": 1.0, "completion": 2.0, "like": 3.0,
                                                                      "share": 4.0})
    prior_strength: float = 10.0


def fold_in(prior: np.ndarray, user_vectors: np.ndarray, weights: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """The regularised least-squares item vector and its blend factor (see module docs).

    Args:
        prior: (d,) CB2CF-predicted item vector.
        user_vectors: (n, d) vectors of the interacting users.
        weights: (n,) summed event weights per user.
        lam: Prior strength (> 0).

    Returns:
        ``(v_post, blend)``.

    Raises:
        ValueError: Shapes disagree or ``lam <= 0``.
    """
    prior = np.asarray(prior, np.float64).reshape(-1)
    U = np.asarray(user_vectors, np.float64).reshape(-1, prior.shape[0])
    w = np.asarray(weights, np.float64).reshape(-1)
    if len(U) != len(w):
        raise ValueError(f"{len(U)} user vectors but {len(w)} weights")
    if lam <= 0:
        raise ValueError("prior_strength must be > 0")
    if len(U) == 0:
        return prior.astype(np.float32), 0.0
    A = lam * np.eye(prior.shape[0]) + (U * w[:, None]).T @ U
    b = lam * prior + U.T @ w
    v = np.linalg.solve(A, b)
    evidence = float((w * (U * U).sum(1)).sum())
    return v.astype(np.float32), evidence / (evidence + lam)
