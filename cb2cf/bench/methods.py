"""The benchmark's methods, each scored on one split into the two result tables.

Every method is scored by :class:`Table` under its fixed row name (``random``, ``most
popular (test counts, leaky)``, ``content kNN``, ``ridge``, ``ridge + magnitude
scaling``, ``DropoutNet``, ``Heater``, ``CLCRec``, ``ALDI``, ``CB2CF``, ``CB2CF +
magnitude scaling``, ``warm oracle``). A method that fails (a diverging loss, a
singular system, a bad input) gets a row ``{"failed": "<Error>: <reason>"}`` and the
others still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from cb2cf.bench.peers import PEERS, PeerConfig, PeerData, magnitude_scale, run_peer, select_magnitude
from cb2cf.bench.split import Split
from cb2cf.errors import CB2CFError
from cb2cf.interactions import to_matrix
from cb2cf.metrics import audience_metrics, rank_metrics
from cb2cf.model import CB2CF
from cb2cf.ridge import ridge_predict, select_ridge_alpha
from cb2cf.space import train_space
from cb2cf.train import TrainConfig, train_cb2cf

logger = logging.getLogger(__name__)

AUDIENCE_KS = (20, 50)
LEAKY_POPULAR = "most popular (test counts, leaky)"
ORACLE = "warm oracle"
FAILURES = (CB2CFError, ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError, MemoryError)


class Table:
    """The two result tables of one split, filled method by method (rows keep their order)."""

    def __init__(self, R_test: sp.csr_matrix) -> None:
        self.R_test = R_test
        self.results: dict[str, dict] = {}  # cold test items ranked for each user
        self.audience: dict[str, dict] = {}  # all users ranked for each cold test item
        self.timings: dict[str, float] = {}

    def score(self, name: str, S_test: np.ndarray, extra: dict | None = None, items: bool = True) -> None:
        """Add the rows of a method from its (n_users, n_cold_test) scores."""
        if items:
            self.results[name] = rank_metrics(S_test, self.R_test) | (extra or {})
        if name != LEAKY_POPULAR:  # one score per item: no ranking of users
            self.audience[name] = audience_metrics(S_test, self.R_test, AUDIENCE_KS)

    def guarded(self, names: tuple[str, ...], fn: Callable[[], None]) -> None:
        """Run ``fn`` (which scores ``names``); on failure the rows ``names`` say why and the run goes on."""
        t0 = time.time()
        try:
            fn()
        except FAILURES as exc:
            reason = f"{type(exc).__name__}: {exc}"
            logger.error("%s failed: %s", names[0], reason)
            for n in names:
                self.results.setdefault(n, {"failed": reason})
                self.audience.setdefault(n, {"failed": reason})
        self.timings[names[0]] = round(time.time() - t0, 1)


def _val_recall(split: Split, users: np.ndarray, P_val: np.ndarray) -> float:
    return rank_metrics(users @ P_val.T, split.R_val)["recall@20"]


def score_reference(table: Table, split: Split, seed: int) -> None:
    """Random, most popular (leaky: test counts) and most active users (audience only)."""
    R_test = split.R_test
    rng = np.random.default_rng([seed, 1])
    table.score("random", rng.random(R_test.shape))
    pop = np.asarray(R_test.sum(0)).ravel()
    table.score(LEAKY_POPULAR, np.tile(pop, (R_test.shape[0], 1)))
    active = np.asarray(split.warm_train.matrix.sum(1), dtype=np.float64)  # (n_users, 1) warm-train counts
    table.score("most active users (warm-train counts)", np.tile(active, (1, R_test.shape[1])), items=False)


def knn_scores(R_warm: sp.csr_matrix, Xw: np.ndarray, Xc: np.ndarray, k: int) -> np.ndarray:
    """Content kNN: a cold item's score for a user sums its cosine to the user's warm items among its k nearest."""
    S = Xc @ Xw.T  # (n_cold, n_warm) cosine (rows are unit-norm per view)
    if k < S.shape[1]:
        thr = -np.partition(-S, k - 1, axis=1)[:, k - 1:k]
        S = np.where(S >= thr, S, 0.0)
    return np.asarray(R_warm @ S.T)  # (n_users, n_cold)


def score_knn(table: Table, split: Split, Xc: np.ndarray) -> None:
    """Content kNN, its neighbourhood size picked on cold validation Recall@20."""
    sl, R_warm = split.rows, split.warm_train.matrix
    best_k, best = 0, -1.0
    for k in (10, 25, 50, 100, 200, len(split.warm_items)):
        r = rank_metrics(knn_scores(R_warm, Xc[sl["warm"]], Xc[sl["val"]], k), split.R_val)["recall@20"]
        if r > best:
            best_k, best = k, r
    table.score("content kNN", knn_scores(R_warm, Xc[sl["warm"]], Xc[sl["test"]], best_k), {"k": best_k})


def select_ridge(X: np.ndarray, split: Split, alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0),
                 ) -> tuple[np.ndarray, float]:
    """The ridge baseline: content rows of ``X`` -> CF vectors, alpha picked on cold validation Recall@20.

    Returns:
        (weights incl. intercept row, alpha).
    """
    rows, U = split.rows, split.space.user_vectors
    W, best_a, _ = select_ridge_alpha(X[rows["warm"]], split.space.item_vectors, alphas,
                                      lambda a, W: _val_recall(split, U, ridge_predict(W, X[rows["val"]])))
    return W, best_a


def score_with_magnitude(table: Table, name: str, split: Split, users: np.ndarray, P_val: np.ndarray,
                         P_test: np.ndarray, mu: float, extra: dict | None = None) -> None:
    """Score ``name`` and ``name + magnitude scaling`` (``a`` picked on cold validation Recall@20)."""
    table.score(name, users @ P_test.T, extra)
    a, r = select_magnitude(users, P_val, split.R_val, mu)
    table.score(f"{name} + magnitude scaling", users @ magnitude_scale(P_test, mu, a).T,
                {"a": a, "val_recall@20": round(r, 4)})


def score_ridge(table: Table, split: Split, Xc: np.ndarray) -> None:
    """Ridge from the concatenated views to the CF vectors (see :func:`select_ridge`), with and without scaling."""
    W, best_a = select_ridge(Xc, split)
    sl, U = split.rows, split.space.user_vectors
    mu = float(np.linalg.norm(split.space.item_vectors, axis=1).mean())
    score_with_magnitude(table, "ridge", split, U, ridge_predict(W, Xc[sl["val"]]), ridge_predict(W, Xc[sl["test"]]),
                         mu, {"alpha": best_a})


def peer_data(split: Split, Xc: np.ndarray) -> PeerData:
    """What a peer sees of the split (see :class:`cb2cf.bench.peers.PeerData`)."""
    sl = split.rows
    return PeerData(Xc[sl["warm"]], Xc[sl["val"]], Xc[sl["test"]], split.space.user_vectors,
                    split.space.item_vectors, split.warm_train.matrix, split.R_val)


def score_peer(table: Table, name: str, data: PeerData, config: PeerConfig) -> None:
    """Train the peer ``name`` and score it; its magnitude-scaled variant goes into the row's extras."""
    res = run_peer(name, data, config)
    table.score(name, res.users @ res.test.T, dict(res.info))
    a, r = select_magnitude(res.users, res.val, data.R_val, res.warm_norm)
    scaled = rank_metrics(res.users @ magnitude_scale(res.test, res.warm_norm, a).T, table.R_test)
    table.results[name] |= {"magnitude_a": a, "magnitude_recall@20": scaled["recall@20"]}


def score_cb2cf(table: Table, split: Split, tcfg: TrainConfig, show_progress: bool) -> CB2CF:
    """Train CB2CF on the warm items (early stopping on the cold validation items); returns the model."""
    val, test, U = split.item_set("val"), split.item_set("test"), split.space.user_vectors
    model, hist = train_cb2cf(split.item_set("warm"), split.space, tcfg, val, split.specs, show_progress)
    mu = float(np.linalg.norm(split.space.item_vectors, axis=1).mean())
    score_with_magnitude(table, "CB2CF", split, U, model.predict(val.features, val.masks),
                         model.predict(test.features, test.masks), mu,
                         {"best_epoch": hist["best_epoch"], "stopped_by": hist["stopped_by"],
                          "train_seconds": round(hist["seconds"], 1), "start": model.manifest["metrics"]["start"]})
    return model


def score_oracle(table: Table, split: Split) -> None:
    """The warm oracle (ceiling): ALS on warm-train plus every cold interaction, its own vectors."""
    oracle = train_space(to_matrix(split.oracle_interactions, split.users, None, binary=True), split.space_config,
                         space_id="ml-oracle-als")
    cold_vectors = oracle.item_vectors[[oracle.item_index(i) for i in split.cold_test]]
    table.score(ORACLE, oracle.user_vectors @ cold_vectors.T)


PEER_NAMES = tuple(PEERS)
