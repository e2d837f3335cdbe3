"""Serving on top of a CF space and (optionally) a CB2CF model.

* :meth:`Predictor.predict` - CF vectors from content features (needs a model);
* :meth:`Predictor.seed_users` - the users to show a new item to first;
* :meth:`Predictor.similar_items` - nearest warm items of a vector;
* :meth:`Predictor.recommend` - a user's candidates mixing warm and new items.

Scores are dot products in the CF space (what the CF model itself ranks by).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cb2cf.errors import ContentError, FeatureMismatchError
from cb2cf.features import Features, Masks
from cb2cf.model import CB2CF
from cb2cf.space import CFSpace

logger = logging.getLogger(__name__)


@dataclass
class Ranked:
    """A ranked list.

    Attributes:
        ids: (k,) ids, best first.
        scores: (k,) float32 scores.
        sources: (k,) ``"warm"`` or ``"new"`` (for :meth:`Predictor.recommend`).
        tag_coverage: The list's tag coverage (for :meth:`Predictor.recommend`; see :func:`tag_coverage`).
    """

    ids: np.ndarray
    scores: np.ndarray
    sources: np.ndarray | None = None
    tag_coverage: dict[str, Any] | None = None

    def to_list(self) -> list[tuple[str, float]]:
        """``[(id, score), ...]``."""
        return [(str(i), float(s)) for i, s in zip(self.ids, self.scores)]


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    k = max(0, min(int(k), len(scores)))
    if k == 0:
        return np.zeros(0, int)
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.argsort(-scores[idx], kind="stable")]


class Predictor:
    """CB2CF predictions and CF-space look-ups.

    Args:
        space: The CF space the model predicts into.
        model: A CB2CF model trained for ``space`` (optional for pure look-ups).

    Raises:
        FeatureMismatchError: The model was trained for another space or dimension.
    """

    def __init__(self, space: CFSpace, model: CB2CF | None = None) -> None:
        self.space, self.model = space, model
        if model is not None:
            if model.cf_dim != space.dim:
                raise FeatureMismatchError(f"model outputs {model.cf_dim}-d vectors, space {space.ref} is {space.dim}-d")
            ref = model.manifest.get("cf_space", {})
            if ref and (ref.get("id"), ref.get("version")) != (space.space_id, space.version):
                raise FeatureMismatchError(f"model {model.version} was trained for space "
                                           f"{ref.get('id')}@{ref.get('version')}, not {space.ref}")
        self._seen = None

    def _vec(self, item_vec: np.ndarray) -> np.ndarray:
        v = np.asarray(item_vec, np.float32).reshape(-1)
        if v.shape != (self.space.dim,) or not np.isfinite(v).all():
            raise ContentError(f"item vector must be finite with shape ({self.space.dim},), got {v.shape}")
        return v

    def predict(self, features: Features, masks: Masks | None = None) -> np.ndarray:
        """CF vectors (n, dim) for one item or a batch of items.

        Raises:
            FeatureMismatchError: No model, unknown views or wrong dims.
            ContentError: Malformed features.
        """
        if self.model is None:
            raise FeatureMismatchError("this Predictor has no CB2CF model")
        return self.model.predict(features, masks)

    def seed_users(self, item_vec: np.ndarray, k: int = 100) -> Ranked:
        """Top-k users by ``user_vec . item_vec``: whom to show a new item to first.

        Raises:
            ContentError: Wrong vector shape or non-finite values.
        """
        s = self.space.user_vectors @ self._vec(item_vec)
        idx = _topk(s, k)
        return Ranked(self.space.user_ids[idx], s[idx])

    def similar_items(self, item_vec: np.ndarray, k: int = 10, exclude: Sequence[str] = ()) -> Ranked:
        """Nearest warm items by cosine similarity.

        Raises:
            ContentError: Wrong vector shape or non-finite values.
        """
        v = self._vec(item_vec)
        iv = self.space.item_vectors
        s = (iv @ v) / np.maximum(np.linalg.norm(iv, axis=1) * np.linalg.norm(v), 1e-12)
        if exclude:
            s = s.copy()
            s[[self.space.item_index(i) for i in exclude]] = -np.inf
        idx = _topk(s, k)
        return Ranked(self.space.item_ids[idx], s[idx].astype(np.float32))

    def recommend(self, user_id: str, k: int = 20, new_items: Sequence[str] = (),
                  new_vectors: np.ndarray | None = None, new_share: float = 0.2,
                  exclude: Sequence[str] = (), item_tags: Mapping[str, Sequence[str]] | None = None,
                  max_tag_share: float = 1.0) -> Ranked:
        """Candidates for a user: the best warm items and up to ``new_share * k`` new items.

        New items are scored like warm ones with the vectors given (their *current* vectors:
        the CB2CF placement folded in with their interactions); a quota of
        ``round(new_share * k)`` slots is reserved for the best new items and the rest is
        filled by score from both pools, so a strong new item can take more slots. With
        ``item_tags``, no tag covers more than ``max(1, floor(max_tag_share * k))`` items of the
        list (items without tags are not capped; the list may come out shorter than ``k``).

        Args:
            user_id: A user of the space.
            k: List length.
            new_items: Ids of new (cold) items.
            new_vectors: Their (n_new, dim) current vectors.
            new_share: Fraction of slots reserved for new items (0..1).
            exclude: Warm or new item ids never to return (e.g. what the user interacted with).
            item_tags: Tags per item id, for the diversity cap and the tag coverage.
            max_tag_share: Largest share of the list one tag may cover (0..1].

        Returns:
            :class:`Ranked` with ``sources`` in {"warm", "new"}, sorted by score, and
            ``tag_coverage`` (:func:`tag_coverage`).

        Raises:
            UnknownIdError: Unknown user.
            ContentError: ``new_vectors`` shape does not match ``new_items``, non-finite vectors, or bad shares.
        """
        if not 0.0 <= new_share <= 1.0:
            raise ContentError(f"new_share must be in [0, 1], got {new_share}")
        if not 0.0 < max_tag_share <= 1.0:
            raise ContentError(f"max_tag_share must be in (0, 1], got {max_tag_share}")
        u = self.space.user_vectors[self.space.user_index(user_id)]
        ex = {str(e) for e in exclude}
        ws = np.where(np.array([i not in ex for i in self.space.item_ids], bool), self.space.item_vectors @ u, -np.inf)
        new_ids = np.asarray([str(i) for i in new_items])
        ns = np.zeros(0, np.float32)
        if len(new_ids):
            nv = np.asarray(new_vectors, np.float32) if new_vectors is not None else None
            if nv is None or nv.shape != (len(new_ids), self.space.dim) or not np.isfinite(nv).all():
                raise ContentError(f"new_vectors must be finite with shape ({len(new_ids)}, {self.space.dim})")
            ns = np.where(np.array([i not in ex for i in new_ids], bool), nv @ u, -np.inf)
        pool_ids = np.concatenate([self.space.item_ids, new_ids])
        pool_s = np.concatenate([ws, ns]).astype(np.float32)
        src = np.array(["warm"] * len(ws) + ["new"] * len(ns))
        tags = {str(i): list(t) for i, t in (item_tags or {}).items()}
        cap = max(1, int(np.floor(max_tag_share * k + 1e-9)))
        picker = _CappedPicker(pool_ids, tags, cap)
        quota = min(int(round(new_share * k)), int(np.isfinite(ns).sum()))
        picker.take(len(ws) + np.argsort(-ns, kind="stable"), ns[np.argsort(-ns, kind="stable")], quota)
        order = np.argsort(-pool_s, kind="stable")
        picker.take(order, pool_s[order], k - len(picker.chosen))
        chosen = np.array(picker.chosen, int)
        chosen = chosen[np.argsort(-pool_s[chosen], kind="stable")]
        return Ranked(pool_ids[chosen], pool_s[chosen], src[chosen],
                      tag_coverage([tags.get(str(i), []) for i in pool_ids[chosen]]))


class _CappedPicker:
    """Greedy selection by score with at most ``cap`` items per tag."""

    def __init__(self, ids: np.ndarray, tags: Mapping[str, list[str]], cap: int) -> None:
        self.ids, self.tags, self.cap = ids, tags, cap
        self.chosen: list[int] = []
        self._taken: set[int] = set()
        self._count: dict[str, int] = {}

    def take(self, order: np.ndarray, scores: np.ndarray, n: int) -> None:
        """Take up to ``n`` more rows of ``order`` (scores aligned), skipping -inf, taken and capped rows."""
        got = 0
        for row, sc in zip(order, scores):
            if got >= n or not np.isfinite(sc):
                break
            row = int(row)
            t = self.tags.get(str(self.ids[row]), [])
            if row in self._taken or any(self._count.get(x, 0) >= self.cap for x in t):
                continue
            self.chosen.append(row)
            self._taken.add(row)
            for x in t:
                self._count[x] = self._count.get(x, 0) + 1
            got += 1


def tag_coverage(slate_tags: Sequence[Sequence[str]]) -> dict[str, Any]:
    """How many tags a list covers: ``{"distinct_tags", "tagged_items", "items", "per_tag", "max_tag_share"}``."""
    per: dict[str, int] = {}
    for ts in slate_tags:
        for t in dict.fromkeys(ts):
            per[t] = per.get(t, 0) + 1
    n = len(slate_tags)
    return {"distinct_tags": len(per), "tagged_items": sum(1 for ts in slate_tags if ts), "items": n,
            "per_tag": dict(sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))),
            "max_tag_share": round(max(per.values()) / n, 4) if per and n else 0.0}
