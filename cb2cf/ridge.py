"""Closed-form ridge regression from content rows to CF vectors: the one ridge solve of cb2cf.

Used to start CB2CF's linear path (:mod:`cb2cf.train`) and as the cold-start
benchmark's ridge baseline (:mod:`cb2cf.bench.benchmark`). Weights carry the intercept
as their last row; the intercept is not penalised. Solved in float64.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np

logger = logging.getLogger(__name__)


def _with_intercept(X: np.ndarray) -> np.ndarray:
    """``X`` with a column of ones appended (the intercept's input)."""
    return np.hstack([X, np.ones((len(X), 1), np.float32)])


def ridge_fits(X: np.ndarray, Y: np.ndarray, alphas: Sequence[float],
               weights: np.ndarray | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Solve ridge for each alpha, building the normal equations once.

    Args:
        X: (n, d) inputs.
        Y: (n, k) targets.
        alphas: L2 penalties, solved in this order.
        weights: Optional (n,) per-row weights (weighted least squares).

    Yields:
        ``(alpha, W)`` with ``W`` the (d + 1, k) float64 weights, intercept row last.

    Raises:
        numpy.linalg.LinAlgError: The regularised system is singular.
    """
    Xb = _with_intercept(X).astype(np.float64)
    Xw = Xb if weights is None else Xb * weights[:, None]
    G, XtY = Xw.T @ Xb, Xw.T @ Y.astype(np.float64)
    for alpha in alphas:
        A = G + alpha * np.eye(Xb.shape[1])
        A[-1, -1] -= alpha  # no penalty on the intercept
        yield alpha, np.linalg.solve(A, XtY)


def ridge_fit(X: np.ndarray, Y: np.ndarray, alpha: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Ridge weights for one alpha (see :func:`ridge_fits`).

    Returns:
        The (d + 1, k) float64 weights, intercept row last.

    Raises:
        numpy.linalg.LinAlgError: The regularised system is singular.
    """
    return next(ridge_fits(X, Y, (alpha,), weights))[1]


def ridge_predict(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Apply ridge weights (intercept row last) to ``X``; float32 (n, k)."""
    return (_with_intercept(X) @ W).astype(np.float32)


def select_ridge_alpha(X: np.ndarray, Y: np.ndarray, alphas: Sequence[float],
                       score: Callable[[float, np.ndarray], float], weights: np.ndarray | None = None,
                       ) -> tuple[np.ndarray, float, float]:
    """Fit ridge for each alpha and keep the best-scoring one (the first on ties).

    Args:
        X: (n, d) inputs.
        Y: (n, k) targets.
        alphas: Candidate penalties, tried in order.
        score: ``(alpha, W) -> float``, higher is better (e.g. a validation Recall).
        weights: Optional (n,) per-row weights.

    Returns:
        ``(W, alpha, score)`` of the best alpha.

    Raises:
        numpy.linalg.LinAlgError: A regularised system is singular.
    """
    best_W, best_a, best = None, alphas[0], -1.0
    for alpha, W in ridge_fits(X, Y, alphas, weights):
        s = score(alpha, W)
        if s > best:
            best_W, best_a, best = W, alpha, s
    if best_W is None:  # every score was <= -1: keep the first alpha
        best_W = ridge_fit(X, Y, best_a, weights)
    return best_W, best_a, best
