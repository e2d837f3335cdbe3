"""Heater (Zhu et al., SIGIR 2020), on the benchmark's warm space.

* Mixture of experts: ``n_experts`` linear experts map content to the CF dim, mixed by a
  softmax gate over the content: ``z_c = sum_k g_k(x) E_k(x)``.
* Similarity constraint: ``||z_c - v||^2`` (relative to the mean ``||v||^2``) pulls the
  content representation toward the item's pretrained CF vector ``v``, weight ``alpha``.
* Randomized training: the item's representation is ``v``, replaced by ``z_c`` with
  probability ``p_random``; user and item transforms (dense tanh layers) then score
  ``g_U(u) . g_I(z)``, trained to reproduce the teacher's ``u . v`` (squared error over
  all users, or ``max_users`` of them, for a batch of warm items).
* A cold item is ``g_I(z_c)``.

Simplified from the paper: no user content (users have only their CF vector, so the
user side has no mixture of experts) and no warm-user randomization.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cb2cf.bench.peers.base import PeerConfig, PeerData, item_batches, mlp, user_sample


@dataclass
class HeaterConfig:
    """Heater's own settings."""

    n_experts: int = 5
    alpha: float = 1.0  # weight of the similarity constraint
    p_random: float = 0.5  # probability of replacing v by z_c while training
    layers: int = 2


class Heater(nn.Module):
    """Mixture-of-experts content map plus user/item transforms; see the module docstring."""

    def __init__(self, d_content: int, k: int, cfg: PeerConfig, own: HeaterConfig | None = None) -> None:
        super().__init__()
        self.own = own or HeaterConfig()
        self.max_users = cfg.max_users
        self.experts = nn.Linear(d_content, k * self.own.n_experts)
        self.gate = nn.Linear(d_content, self.own.n_experts)
        self.item = mlp(k, cfg.hidden_dim, k, nn.Tanh, layers=self.own.layers)
        self.user = mlp(k, cfg.hidden_dim, k, nn.Tanh, layers=self.own.layers)
        self.k = k

    def content(self, X: torch.Tensor) -> torch.Tensor:
        """``z_c``: the gated mixture of the experts' outputs."""
        E = self.experts(X).view(len(X), self.own.n_experts, self.k)
        return (torch.softmax(self.gate(X), 1)[:, :, None] * E).sum(1)

    def batches(self, data: PeerData, gen: np.random.Generator, batch_size: int) -> Iterable[np.ndarray]:
        return item_batches(len(data.V), gen, batch_size)

    def loss(self, batch: np.ndarray, data: PeerData, gen: np.random.Generator) -> torch.Tensor:
        users = user_sample(len(data.U), gen, self.max_users)
        U, V, X = (torch.from_numpy(a) for a in (data.U[users], data.V[batch], data.X_warm[batch]))
        zc = self.content(X)
        swap = torch.from_numpy(gen.random(len(batch)) < self.own.p_random)[:, None]
        pred = self.user(U) @ self.item(torch.where(swap, zc, V)).T
        sim = (zc - V).pow(2).sum(1).mean() / V.pow(2).sum(1).mean().clamp_min(1e-8)
        return (pred - U @ V.T).pow(2).mean() + self.own.alpha * sim

    def user_vectors(self, U: torch.Tensor) -> torch.Tensor:
        return self.user(U)

    def item_vectors(self, X: torch.Tensor) -> torch.Tensor:
        return self.item(self.content(X))

    def warm_item_vectors(self, X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        return self.item(V)
