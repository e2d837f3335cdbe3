"""CLCRec (Wei et al., ACM MM 2021), on the benchmark's warm space.

A content encoder ``f`` (dense layers) is trained with two contrastive (InfoNCE) terms
over batches of warm (user, item) interactions, cosine similarities over a temperature
``tau``:

* user-item: for each interaction, the user against its item and ``n_neg`` sampled
  items shared by the batch; each item is represented by its CF vector ``v`` or, with
  probability ``p_content`` (the paper's simulated cold items), by ``f(x)``;
* representation-embedding: each item's ``f(x)`` against the batch items' CF vectors
  ``v``, its own being the positive (content and collaborative views of one item agree).

The loss is ``w_ui * L_ui + (1 - w_ui) * L_re``. A cold item is ``f(x)``, normalised and
scaled to the mean warm norm (the model is trained on cosines, so ``f(x)``'s length
carries nothing), scored with the space's user vectors.

Simplified from the paper: the collaborative embeddings are the warm ALS space's
(fixed) instead of being learned jointly, so the method lands in the same space as
every other method of the benchmark.
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
class CLCRecConfig:
    """CLCRec's own settings."""

    tau: float = 0.2
    w_ui: float = 0.5
    p_content: float = 0.5
    n_neg: int = 256


class CLCRec(nn.Module):
    """The content encoder; see the module docstring."""

    def __init__(self, d_content: int, k: int, cfg: PeerConfig, own: CLCRecConfig | None = None,
                 warm_norm: float = 1.0) -> None:
        super().__init__()
        self.own = own or CLCRecConfig()
        self.enc = mlp(d_content, cfg.hidden_dim, k, nn.LeakyReLU)
        self.register_buffer("scale", torch.tensor(float(warm_norm)))

    def batches(self, data: PeerData, gen: np.random.Generator, batch_size: int) -> Iterable[np.ndarray]:
        return triple_batches(data.R_warm, gen, 4 * batch_size)

    def _items(self, items: np.ndarray, data: PeerData, gen: np.random.Generator) -> torch.Tensor:
        """Unit item representations: ``v``, or ``f(x)`` with probability ``p_content``."""
        V = F.normalize(torch.from_numpy(data.V[items]), dim=1)
        C = F.normalize(self.enc(torch.from_numpy(data.X_warm[items])), dim=1)
        swap = torch.from_numpy(gen.random(len(items)) < self.own.p_content)[:, None]
        return torch.where(swap, C, V)

    def loss(self, batch: np.ndarray, data: PeerData, gen: np.random.Generator) -> torch.Tensor:
        u = F.normalize(torch.from_numpy(data.U[batch[:, 0]]), dim=1)
        pos = self._items(batch[:, 1], data, gen)
        neg = self._items(gen.integers(0, len(data.V), self.own.n_neg), data, gen)
        logits = torch.cat([(u * pos).sum(1, keepdim=True), u @ neg.T], 1) / self.own.tau
        zeros = torch.zeros(len(batch), dtype=torch.long)
        l_ui = F.cross_entropy(logits, zeros)
        items = np.unique(batch[:, 1])
        C = F.normalize(self.enc(torch.from_numpy(data.X_warm[items])), dim=1)
        V = F.normalize(torch.from_numpy(data.V[items]), dim=1)
        l_re = F.cross_entropy(C @ V.T / self.own.tau, torch.arange(len(items)))
        return self.own.w_ui * l_ui + (1 - self.own.w_ui) * l_re

    def user_vectors(self, U: torch.Tensor) -> torch.Tensor:
        return U

    def item_vectors(self, X: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.enc(X), dim=1) * self.scale

    def warm_item_vectors(self, X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        return V
