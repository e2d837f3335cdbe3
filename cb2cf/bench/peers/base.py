"""What every cold-start peer shares: the data it sees, its config, the training loop, magnitude scaling.

A peer sees exactly what the benchmark gives every method: the concatenated content
views of the warm, cold-validation and cold-test items, the warm ALS space (user and
warm item vectors: the teacher) and the warm-train interactions. Cold-validation
interactions are used for model selection only (early stopping on Recall@20).

Training stops on epochs and validation (``max_epochs``, ``patience``); ``max_seconds``
is a guard only, and when it fires the result says so (``stopped_by: "time cap"``).
A loss that is NaN or infinite raises :class:`~cb2cf.errors.TrainingError`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from cb2cf.errors import TrainingError
from cb2cf.metrics import rank_metrics

logger = logging.getLogger(__name__)


@dataclass
class PeerData:
    """The inputs of a peer (rows of the content matrices: warm, validation, test items).

    Attributes:
        X_warm, X_val, X_test: (n, d_content) float32 content (the benchmark's concatenated views).
        U: (n_users, k) user vectors of the warm space (the teacher's users).
        V: (n_warm, k) warm item vectors of the space (the teacher's items).
        R_warm: (n_users, n_warm) warm-train interactions.
        R_val: (n_users, n_val) cold-validation interactions (selection only).
    """

    X_warm: np.ndarray
    X_val: np.ndarray
    X_test: np.ndarray
    U: np.ndarray
    V: np.ndarray
    R_warm: sp.csr_matrix
    R_val: sp.csr_matrix

    @property
    def popularity(self) -> np.ndarray:
        """(n_warm,) warm-train interaction counts."""
        return np.asarray(self.R_warm.sum(0)).ravel()


@dataclass
class PeerConfig:
    """Training settings shared by the peers (each peer has its own method settings)."""

    hidden_dim: int = 256
    batch_size: int = 512  # items per batch; the interaction-triple peers (CLCRec, ALDI) take 4x as many triples
    lr: float = 1e-3
    weight_decay: float = 1e-5
    max_epochs: int = 40
    patience: int = 5
    max_users: int = 2048  # users per item batch in the score-regression losses (all when fewer)
    seed: int = 0
    max_seconds: float = 600.0  # a guard, reported when it fires; training stops on epochs and validation


class Peer(Protocol):
    """A trained-by-:func:`fit_peer` cold-start model: user and content-only item vectors in one space."""

    def loss(self, batch: np.ndarray, data: PeerData, gen: np.random.Generator) -> torch.Tensor: ...

    def batches(self, data: PeerData, gen: np.random.Generator, batch_size: int) -> Iterable[np.ndarray]: ...

    def user_vectors(self, U: torch.Tensor) -> torch.Tensor: ...

    def item_vectors(self, X: torch.Tensor) -> torch.Tensor: ...

    def warm_item_vectors(self, X: torch.Tensor, V: torch.Tensor) -> torch.Tensor: ...

    def parameters(self) -> Iterable[nn.Parameter]: ...

    def train(self, mode: bool = True) -> nn.Module: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> object: ...


@dataclass
class PeerResult:
    """A fitted peer's vectors (numpy) and how training went."""

    users: np.ndarray  # (n_users, k') user vectors in the peer's scoring space
    val: np.ndarray  # (n_val, k') cold validation item vectors
    test: np.ndarray  # (n_test, k') cold test item vectors
    warm_norm: float  # mean norm of the warm items' vectors in that space (magnitude scaling's mu)
    info: dict  # best_epoch, epochs, stopped_by, seconds, val_recall@20


def mlp(d_in: int, hidden: int, d_out: int, act: type[nn.Module] = nn.GELU, dropout: float = 0.0,
        layers: int = 2) -> nn.Sequential:
    """``layers`` linear layers with ``act`` between (the last one linear)."""
    mods: list[nn.Module] = []
    d = d_in
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), act()] + ([nn.Dropout(dropout)] if dropout else [])
        d = hidden
    mods.append(nn.Linear(d, d_out))
    return nn.Sequential(*mods)


def item_batches(n: int, gen: np.random.Generator, batch_size: int) -> list[np.ndarray]:
    """A random permutation of ``range(n)`` cut into batches."""
    perm = gen.permutation(n)
    return [perm[s:s + batch_size] for s in range(0, n, batch_size)]


def triple_batches(R: sp.csr_matrix, gen: np.random.Generator, batch_size: int) -> list[np.ndarray]:
    """Every (user, positive item) pair once with a uniform random negative item: (b, 3) int arrays."""
    coo = R.tocoo()
    perm = gen.permutation(coo.nnz)
    neg = gen.integers(0, R.shape[1], coo.nnz)
    trip = np.stack([coo.row[perm], coo.col[perm], neg], 1)
    return [trip[s:s + batch_size] for s in range(0, len(trip), batch_size)]


def user_sample(n_users: int, gen: np.random.Generator, max_users: int) -> np.ndarray:
    """All users, or ``max_users`` of them at random."""
    return np.arange(n_users) if n_users <= max_users else np.sort(gen.choice(n_users, max_users, replace=False))


@torch.no_grad()
def _vectors(peer: Peer, data: PeerData, t: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    peer.train(False)
    users = peer.user_vectors(t["U"]).numpy()
    val = peer.item_vectors(t["X_val"]).numpy()
    peer.train(True)
    return users, val


def fit_peer(name: str, peer: Peer, data: PeerData, cfg: PeerConfig) -> PeerResult:
    """Train ``peer`` (Adam, seeded), early stopping on cold-validation Recall@20; the best epoch is kept.

    Raises:
        TrainingError: The loss became NaN or infinite.
    """
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    gen = np.random.default_rng(cfg.seed)
    t = {k: torch.from_numpy(np.ascontiguousarray(v, np.float32))
         for k, v in (("U", data.U), ("V", data.V), ("X_warm", data.X_warm), ("X_val", data.X_val),
                      ("X_test", data.X_test))}
    params = [p for p in peer.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, best_epoch, best_state, stopped_by, epoch = -1.0, -1, copy.deepcopy(peer.state_dict()), "max_epochs", -1
    for epoch in range(cfg.max_epochs):
        peer.train(True)
        for batch in peer.batches(data, gen, cfg.batch_size):
            loss = peer.loss(batch, data, gen)
            if not torch.isfinite(loss):
                raise TrainingError(f"{name}: loss is {float(loss.detach())} at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        users, val = _vectors(peer, data, t)
        if not (np.isfinite(users).all() and np.isfinite(val).all()):
            raise TrainingError(f"{name}: non-finite vectors at epoch {epoch}")
        r = rank_metrics(users @ val.T, data.R_val)["recall@20"]
        logger.debug("%s epoch %d val recall@20 %.4f", name, epoch, r)
        if r > best:
            best, best_epoch, best_state = r, epoch, copy.deepcopy(peer.state_dict())
        if epoch - best_epoch >= cfg.patience:
            stopped_by = "patience"
            break
        if time.time() - t0 > cfg.max_seconds:
            stopped_by = "time cap"
            logger.warning("%s: time cap %.0fs fired at epoch %d", name, cfg.max_seconds, epoch)
            break
    peer.load_state_dict(best_state)
    peer.train(False)
    with torch.no_grad():
        users = peer.user_vectors(t["U"]).numpy()
        val, test = peer.item_vectors(t["X_val"]).numpy(), peer.item_vectors(t["X_test"]).numpy()
        warm = peer.warm_item_vectors(t["X_warm"], t["V"]).numpy()
    info = {"best_epoch": best_epoch, "epochs": epoch + 1, "stopped_by": stopped_by,
            "seconds": round(time.time() - t0, 1), "val_recall@20": round(best, 4)}
    return PeerResult(users, val, test, float(np.linalg.norm(warm, axis=1).mean()), info)


def magnitude_scale(P: np.ndarray, mu: float, a: float) -> np.ndarray:
    """Magnitude scaling (Meehan & Pauwels, RecSys 2025): each row's norm n becomes (n + a*mu) / (1 + a).

    The direction is kept; ``a = 0`` is the identity, ``a -> inf`` gives every row the norm ``mu``.
    """
    n = np.linalg.norm(P, axis=1, keepdims=True)
    return (P * ((n + a * mu) / (1.0 + a) / np.maximum(n, 1e-12))).astype(np.float32)


MAGNITUDE_GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0)


def select_magnitude(users: np.ndarray, P_val: np.ndarray, R_val: sp.csr_matrix, mu: float,
                     grid: Sequence[float] = MAGNITUDE_GRID) -> tuple[float, float]:
    """The ``a`` of :func:`magnitude_scale` with the best cold-validation Recall@20 (the first on ties).

    Returns:
        ``(a, validation recall@20)``.
    """
    best_a, best = grid[0], -1.0
    for a in grid:
        r = rank_metrics(users @ magnitude_scale(P_val, mu, a).T, R_val)["recall@20"]
        if r > best:
            best_a, best = a, r
    return float(best_a), float(best)
