"""The published cold-start methods the benchmark compares CB2CF with, implemented from their papers in torch.

Every peer sees what every method of the benchmark sees (:class:`PeerData`: the
concatenated content views, the warm ALS space as teacher, the warm-train interactions)
and is selected on the cold validation items only (early stopping on Recall@20).
:func:`magnitude_scale` is the post-hoc norm correction applicable to any method.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cb2cf.bench.peers.aldi import ALDI
from cb2cf.bench.peers.base import (
    MAGNITUDE_GRID,
    Peer,
    PeerConfig,
    PeerData,
    PeerResult,
    fit_peer,
    magnitude_scale,
    select_magnitude,
)
from cb2cf.bench.peers.clcrec import CLCRec
from cb2cf.bench.peers.dropoutnet import DropoutNet
from cb2cf.bench.peers.heater import Heater

PEERS: dict[str, Callable[[PeerData, PeerConfig], Peer]] = {
    "DropoutNet": lambda d, c: DropoutNet(d.X_warm.shape[1], d.V.shape[1], c),
    "Heater": lambda d, c: Heater(d.X_warm.shape[1], d.V.shape[1], c),
    "CLCRec": lambda d, c: CLCRec(d.X_warm.shape[1], d.V.shape[1], c,
                                  warm_norm=float(np.linalg.norm(d.V, axis=1).mean())),
    "ALDI": lambda d, c: ALDI(d.X_warm.shape[1], d.V.shape[1], c),
}


def run_peer(name: str, data: PeerData, config: PeerConfig | None = None) -> PeerResult:
    """Build and train the peer ``name`` (a key of :data:`PEERS`), seeded by ``config.seed``.

    Raises:
        KeyError: Unknown peer.
        TrainingError: Its loss diverged.
    """
    import torch

    cfg = config or PeerConfig()
    torch.manual_seed(cfg.seed)
    return fit_peer(name, PEERS[name](data, cfg), data, cfg)


__all__ = ["MAGNITUDE_GRID", "PEERS", "Peer", "PeerConfig", "PeerData", "PeerResult", "fit_peer",
           "magnitude_scale", "run_peer", "select_magnitude"]
