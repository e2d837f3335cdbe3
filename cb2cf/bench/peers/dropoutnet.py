"""DropoutNet (Volkovs, Yu & Poutanen, NeurIPS 2017), on the benchmark's warm space.

Two towers: the item tower reads the item's preference vector (its warm ALS vector)
concatenated with its content, the user tower reads the user's ALS vector. They are
trained to reproduce the teacher's scores ``u . v`` (squared error) over all users (or
a random ``max_users`` of them) for a batch of warm items, with the item's preference
input set to zero with probability ``drop`` (input dropout): the towers learn to score
from content alone. A cold item is the item tower with a zero preference input.

Simplified from the paper: there is no user content (the user tower reads only the
user's vector) and no "user transform" input (the mean of the user's items); the
towers are ``layers`` dense tanh layers without batch norm.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cb2cf.bench.peers.base import PeerConfig, PeerData, item_batches, mlp, user_sample


@dataclass
class DropoutNetConfig:
    """DropoutNet's own settings."""

    drop: float = 0.5  # probability that an item's preference input is zeroed
    layers: int = 2
    out_dim: int = 0  # 0: the space's dim


class DropoutNet(nn.Module):
    """The two towers; see the module docstring."""

    def __init__(self, d_content: int, k: int, cfg: PeerConfig, own: DropoutNetConfig | None = None) -> None:
        super().__init__()
        self.own = own or DropoutNetConfig()
        self.max_users = cfg.max_users
        out = self.own.out_dim or k
        self.item = mlp(k + d_content, cfg.hidden_dim, out, nn.Tanh, layers=self.own.layers)
        self.user = mlp(k, cfg.hidden_dim, out, nn.Tanh, layers=self.own.layers)

    def batches(self, data: PeerData, gen: np.random.Generator, batch_size: int) -> Iterable[np.ndarray]:
        return item_batches(len(data.V), gen, batch_size)

    def loss(self, batch: np.ndarray, data: PeerData, gen: np.random.Generator) -> torch.Tensor:
        users = user_sample(len(data.U), gen, self.max_users)
        U, V, X = (torch.from_numpy(a) for a in (data.U[users], data.V[batch], data.X_warm[batch]))
        keep = torch.from_numpy(gen.random(len(batch)) >= self.own.drop).float()[:, None]
        pred = self.user(U) @ self.item(torch.cat([V * keep, X], 1)).T
        return (pred - U @ V.T).pow(2).mean()

    def user_vectors(self, U: torch.Tensor) -> torch.Tensor:
        return self.user(U)

    def item_vectors(self, X: torch.Tensor) -> torch.Tensor:
        k = self.item[0].in_features - X.shape[1]
        return self.item(torch.cat([X.new_zeros(len(X), k), X], 1))

    def warm_item_vectors(self, X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        return self.item(torch.cat([V, X], 1))
