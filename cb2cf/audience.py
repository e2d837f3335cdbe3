"""The cold-start audience: who sees a new video first.

Given an item's CF vector (CB2CF-predicted, or warmed up by interactions) and a CF
space, the seed audience of ``k`` users mixes two shares:

* **exploit** (``1 - exploration`` of ``k``): the users with the highest dot product
  ``u . v`` - what the CF model itself would rank by;
* **exploration** (``exploration`` of ``k``): users sampled, with a seeded RNG, from
  interest clusters *other* than the item's ``near_clusters`` nearest ones. Clusters
  are k-means over the L2-normalised user vectors (fitted once per space); the draw
  is spread round-robin over the far clusters so every interest group gets a share.

This gives niche content and new creators a fair first audience and shows users
something outside their bubble. Every entry says why the user was chosen.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cb2cf.space import CFSpace

logger = logging.getLogger(__name__)


@dataclass
class AudienceConfig:
    """Seed-audience settings.

    Attributes:
        k: Audience size.
        exploration: Share of ``k`` drawn from far clusters (0 disables exploration).
        n_clusters: k-means clusters over user vectors (capped by the number of users).
        near_clusters: The item's nearest clusters, excluded from exploration.
        seed: RNG seed of k-means and of the exploration draw (mixed with the item vector).
    """

    k: int = 300
    exploration: float = 0.1
    n_clusters: int = 16
    near_clusters: int = 2
    seed: int = 0


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class Audience:
    """Seed audiences over one CF space.

    Args:
        space: The CF space (user ids and vectors).
        config: Defaults for :meth:`seed`.
    """

    def __init__(self, space: CFSpace, config: AudienceConfig | None = None) -> None:
        from sklearn.cluster import KMeans

        self.space, self.config = space, config or AudienceConfig()
        n_users = len(space.user_ids)
        n = max(1, min(self.config.n_clusters, n_users))
        units = _unit(space.user_vectors.astype(np.float64))
        km = KMeans(n_clusters=n, n_init=4, random_state=self.config.seed).fit(units)
        self.labels: np.ndarray = km.labels_.astype(int)
        self.centroids: np.ndarray = _unit(km.cluster_centers_).astype(np.float32)
        self._about: dict[int, list[str]] = {}

    def cluster_about(self, cluster: int, n: int = 3) -> list[str]:
        """What an interest cluster is about: the ids of the ``n`` warm items nearest its centroid."""
        if cluster not in self._about:
            iv = self.space.item_vectors
            if len(iv) == 0:
                return []
            sims = _unit(iv.astype(np.float64)) @ self.centroids[cluster].astype(np.float64)
            self._about[cluster] = [str(self.space.item_ids[i]) for i in np.argsort(-sims, kind="stable")[:max(n, 5)]]
        return self._about[cluster][:n]

    def nearest_clusters(self, item_vec: np.ndarray, n: int | None = None) -> list[int]:
        """The item's ``n`` nearest interest clusters by cosine similarity, nearest first."""
        n = self.config.near_clusters if n is None else n
        sims = self.centroids @ _unit(np.asarray(item_vec, np.float32))
        return [int(c) for c in np.argsort(-sims, kind="stable")[: max(0, n)]]

    def seed(self, item_vec: np.ndarray, k: int | None = None, exploration: float | None = None,
             exclude: Sequence[str] = (), seed: int | None = None) -> list[dict[str, Any]]:
        """The seed audience of one item.

        Args:
            item_vec: The item's CF vector, shape ``(space.dim,)``.
            k: Audience size (default from the config).
            exploration: Exploration share in [0, 1] (default from the config).
            exclude: User ids never to include (e.g. the creator, users who already saw it).
            seed: RNG seed of the exploration draw; default: the config seed mixed with
                the item vector, so the same item gets the same audience.

        Returns:
            ``[{"user_id", "score", "reason": "score" | "exploration", "cluster", "why"}, ...]``:
            exploit users by descending score first, then exploration users (with
            ``cluster_about``: the warm items nearest their cluster).

        Raises:
            ValueError: Wrong vector shape, non-finite values, or ``exploration`` outside [0, 1].
        """
        cfg = self.config
        v = np.asarray(item_vec, np.float32).reshape(-1)
        if v.shape != (self.space.dim,) or not np.isfinite(v).all():
            raise ValueError(f"item vector must be finite with shape ({self.space.dim},), got {v.shape}")
        k = cfg.k if k is None else int(k)
        share = cfg.exploration if exploration is None else float(exploration)
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"exploration must be in [0, 1], got {share}")
        scores = self.space.user_vectors @ v
        allowed = np.ones(len(scores), bool)
        if exclude:
            ex = set(map(str, exclude))
            allowed &= np.array([u not in ex for u in self.space.user_ids])
        k = max(0, min(k, int(allowed.sum())))
        near = set(self.nearest_clusters(v))
        far_pool = allowed & ~np.isin(self.labels, list(near))
        n_explore = min(int(round(share * k)), int(far_pool.sum()))
        n_exploit = k - n_explore
        ranked = np.argsort(-np.where(allowed, scores, -np.inf), kind="stable")[:n_exploit]
        chosen = np.zeros(len(scores), bool)
        chosen[ranked] = True
        rng = np.random.default_rng(self._seed(v, seed))
        explore = self._draw(far_pool & ~chosen, n_explore, rng)
        out = [self._entry(i, scores, "score") for i in ranked]
        out += [self._entry(i, scores, "exploration") for i in explore]
        return out

    def _seed(self, v: np.ndarray, seed: int | None) -> int:
        if seed is not None:
            return int(seed)
        digest = hashlib.sha256(np.round(v, 5).tobytes()).digest()
        return self.config.seed ^ int.from_bytes(digest[:8], "little")

    def _draw(self, pool: np.ndarray, n: int, rng: np.random.Generator) -> list[int]:
        """Round-robin over far clusters (in random order), a random user of each in turn."""
        by_cluster = {int(c): list(rng.permutation(np.flatnonzero(pool & (self.labels == c))))
                      for c in np.unique(self.labels[pool])}
        order = list(rng.permutation(sorted(by_cluster)))
        picked: list[int] = []
        while len(picked) < n and order:
            for c in list(order):
                if len(picked) >= n:
                    break
                if by_cluster[c]:
                    picked.append(int(by_cluster[c].pop()))
                else:
                    order.remove(c)
        return picked

    def _entry(self, i: int, scores: np.ndarray, reason: str) -> dict[str, Any]:
        c = int(self.labels[i])
        entry = {"user_id": str(self.space.user_ids[i]), "score": float(scores[i]), "reason": reason, "cluster": c}
        if reason == "exploration":
            about = self.cluster_about(c)
            entry |= {"why": f"exploration from cluster {c} (near items {', '.join(about)})", "cluster_about": about}
        else:
            entry["why"] = f"score {scores[i]:.3f} against the video's vector (top of the CF ranking)"
        return entry
