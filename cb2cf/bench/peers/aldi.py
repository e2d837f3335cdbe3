"""ALDI (Huang et al., SIGIR 2023): aligning distillation from the warm teacher, on the benchmark's warm space.

Student: an item tower ``f_I`` (dense layers, content -> CF dim) and a user tower
``f_U`` (a linear map of the user's ALS vector, initialised to the identity); the
student's score is ``s(u, i) = f_U(u) . f_I(x_i)``. The teacher is the warm ALS space,
``t(u, i) = u . v_i``. Over (user, positive warm item, random negative warm item)
triples:

* recommendation: BPR, ``-log sigmoid(s(u, i) - s(u, j))``;
* rating-distribution aligning: ``(s(u, i) - s(u, j) - (t(u, i) - t(u, j)))^2`` (the
  score gaps agree; an offset between student and teacher is free);
* ranking aligning: binary cross-entropy of ``sigmoid(s gap)`` against
  ``sigmoid(t gap)`` (the pairwise order agrees);
* identification aligning: for the batch's positive items, each row of the student's
  item-item similarity softmax is pulled (KL) toward the teacher's.

The three distillation terms are weighted per item by ``tanh(gamma * log(1 + pop))``
(a popular item's teacher vector is more reliable; the paper's popularity-aware
weighting). A cold item is ``f_I(x)``.

Simplified from the paper: one weight per term (``w_rate``, ``w_rank``, ``w_id``) instead
of the paper's schedule, and the teacher is the fixed warm ALS space.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cb2cf.bench.peers.base import PeerConfig, PeerData, mlp, triple_batches


@dataclass
class ALDIConfig:
    """ALDI's own settings."""

    w_rate: float = 1.0
    w_rank: float = 1.0
    w_id: float = 1.0
    tau: float = 0.5  # temperature of the identification softmaxes
    gamma: float = 0.5  # popularity weighting tanh(gamma * log1p(pop))


class ALDI(nn.Module):
    """Student item and user towers; see the module docstring."""

    def __init__(self, d_content: int, k: int, cfg: PeerConfig, own: ALDIConfig | None = None) -> None:
        super().__init__()
        self.own = own or ALDIConfig()
        self.item = mlp(d_content, cfg.hidden_dim, k)
        self.user = nn.Linear(k, k)
        with torch.no_grad():
            self.user.weight.copy_(torch.eye(k))
            self.user.bias.zero_()
        self._w: torch.Tensor | None = None

    def batches(self, data: PeerData, gen: np.random.Generator, batch_size: int) -> Iterable[np.ndarray]:
        return triple_batches(data.R_warm, gen, 4 * batch_size)

    def loss(self, batch: np.ndarray, data: PeerData, gen: np.random.Generator) -> torch.Tensor:
        if self._w is None:
            self._w = torch.tanh(self.own.gamma * torch.from_numpy(np.log1p(data.popularity)).float())
        u_t = torch.from_numpy(data.U[batch[:, 0]])
        vi, vj = (torch.from_numpy(data.V[batch[:, c]]) for c in (1, 2))
        pi, pj = (self.item(torch.from_numpy(data.X_warm[batch[:, c]])) for c in (1, 2))
        u_s = self.user(u_t)
        gap_s = (u_s * pi).sum(1) - (u_s * pj).sum(1)
        gap_t = (u_t * vi).sum(1) - (u_t * vj).sum(1)
        w = (self._w[batch[:, 1]] + self._w[batch[:, 2]]) / 2
        rec = -F.logsigmoid(gap_s).mean()
        rate = (w * (gap_s - gap_t).pow(2)).mean()
        rank = (w * F.binary_cross_entropy_with_logits(gap_s, torch.sigmoid(gap_t), reduction="none")).mean()
        items = np.unique(batch[:, 1])
        P = self.item(torch.from_numpy(data.X_warm[items]))
        V = torch.from_numpy(data.V[items])
        log_s = F.log_softmax(P @ P.T / self.own.tau, 1)
        p_t = F.softmax(V @ V.T / self.own.tau, 1)
        ident = (self._w[items] * F.kl_div(log_s, p_t, reduction="none").sum(1)).mean()
        return rec + self.own.w_rate * rate + self.own.w_rank * rank + self.own.w_id * ident

    def user_vectors(self, U: torch.Tensor) -> torch.Tensor:
        return self.user(U)

    def item_vectors(self, X: torch.Tensor) -> torch.Tensor:
        return self.item(X)

    def warm_item_vectors(self, X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        return V
