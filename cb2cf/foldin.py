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

**Exposed users who did not engage** (optional, ``negatives``): the implicit-feedback ALS
item update (Hu, Koren & Volinsky 2008) treats them as zero targets with confidence
``c0`` (default 1), so the objective gains ``sum_n c0 (0 - n . v)^2``::

    v_post = (lam I + sum_u w_u u u^T + c0 sum_n n n^T)^-1 (lam v_prior + sum_u w_u u)

With HKV confidences the caller passes ``w_u = 1 + alpha * (event weight)``
(:func:`hkv_confidence`). Only users who were *shown* the item count as negatives: the
prior stands in for everyone else, so with no impressions ``v_post = v_prior`` still.
Their evidence ``c0 sum_n ||n||^2`` counts toward the blend.

**Prior strength on the space's scale:** ALS user vectors have squared norms far from 1
(about 100 on MovieLens), so a fixed ``lam`` means different things in different
spaces. :func:`scaled_strength` gives ``lam = c * mean_u ||u||^2``: ``c`` is how many
average users' worth of evidence the prior is worth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FoldInConfig:
    """Fold-in settings.

    Attributes:
        event_weights: Weight of each event kind.
        prior_strength: A fixed ``lam`` (None: scaled to the space, ``prior_scale``).
        prior_scale: ``lam = prior_scale * mean ||u||^2``: the prior is worth this many average
            users' evidence. Reach on the cold validation items of ``cb2cf simulate`` is flat
            between 0.3 and 10 (a fixed ``lam = 10`` was 0.1 users on MovieLens, where ``||u||^2``
            is about 100); 10 keeps the blend meaningful for graduation (``graduate_blend = 0.9``
            then needs about 90 average users' weight, not 9).
        alpha: HKV confidence ``1 + alpha * w`` of engaged users (None: the summed weights ``w``).
        negative_confidence: ``c0`` of the users shown the item who did not engage (0: they are
            not used; adding them as zero targets lowered reach on validation, docs/coldstart-loop.md).
    """

    event_weights: dict[str, float] = field(default_factory=lambda: {"view": 1.0, "completion": 2.0, "like": 3.0,
                                                                      "share": 4.0})
    prior_strength: float | None = None
    prior_scale: float = 10.0
    alpha: float | None = None
    negative_confidence: float = 0.0

    def strength(self, user_vectors: np.ndarray) -> float:
        """``lam``: ``prior_strength`` when set, else ``prior_scale * mean ||u||^2`` of the space's users."""
        if self.prior_strength is not None:
            return float(self.prior_strength)
        return scaled_strength(user_vectors, self.prior_scale)

    def confidence(self, weights: np.ndarray) -> np.ndarray:
        """Engaged users' confidences: the summed event weights, or ``1 + alpha * w`` when ``alpha`` is set."""
        w = np.asarray(weights, np.float64)
        return w if self.alpha is None else hkv_confidence(w, self.alpha)


def scaled_strength(user_vectors: np.ndarray, scale: float) -> float:
    """``scale * mean ||u||^2`` over the users: a prior worth ``scale`` average users.

    Raises:
        ValueError: ``scale <= 0`` or no users.
    """
    U = np.asarray(user_vectors, np.float64)
    if scale <= 0 or U.size == 0:
        raise ValueError(f"prior scale must be > 0 over at least one user, got {scale} over {len(U)} users")
    return float(scale * (U * U).sum(1).mean())


def hkv_confidence(weights: np.ndarray, alpha: float) -> np.ndarray:
    """Hu-Koren-Volinsky confidence ``1 + alpha * w`` of an observed (engaged) user.

    Raises:
        ValueError: ``alpha < 0``.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    return 1.0 + alpha * np.asarray(weights, np.float64)


def fold_in(prior: np.ndarray, user_vectors: np.ndarray, weights: np.ndarray, lam: float,
            negatives: np.ndarray | None = None, negative_confidence: float = 1.0) -> tuple[np.ndarray, float]:
    """The regularised least-squares item vector and its blend factor (see module docs).

    Args:
        prior: (d,) CB2CF-predicted item vector.
        user_vectors: (n, d) vectors of the interacting users.
        weights: (n,) summed event weights (or confidences) per user.
        lam: Prior strength (> 0).
        negatives: (m, d) vectors of users shown the item who did not engage (zero targets);
            None or empty: none.
        negative_confidence: ``c0``, the confidence of each negative (>= 0).

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
    if negative_confidence < 0:
        raise ValueError(f"negative_confidence must be >= 0, got {negative_confidence}")
    N = np.zeros((0, prior.shape[0])) if negatives is None else np.asarray(negatives, np.float64).reshape(-1, prior.shape[0])
    if negative_confidence == 0:
        N = N[:0]
    if len(U) == 0 and len(N) == 0:
        return prior.astype(np.float32), 0.0
    A = lam * np.eye(prior.shape[0]) + (U * w[:, None]).T @ U + negative_confidence * (N.T @ N)
    b = lam * prior + U.T @ w
    v = np.linalg.solve(A, b)
    evidence = float((w * (U * U).sum(1)).sum() + negative_confidence * (N * N).sum())
    return v.astype(np.float32), evidence / (evidence + lam)
