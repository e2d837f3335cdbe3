"""The audience of a video's next stage: aimed where it did well, from its current vector.

The pool of ``k`` users, none of them shown the video before, has three parts:

* **amplified** (``aim_share`` of the non-exploration slots): the best-scoring users of the
  ``aim_clusters`` interest clusters where the video's engagement per exposed user was
  highest in the stages so far ("amplified in a specific user group");
* **score**: the rest of the non-exploration slots, the best ``u . v`` over everyone left;
* **exploration** (``exploration`` of ``k``): users of clusters far from the video, drawn
  round-robin as in :meth:`cb2cf.audience.Audience.seed`.

``v`` is the video's current vector: the CB2CF placement folded in with what the stages
saw (:func:`cb2cf.foldin.fold_in`). Every entry says why the user is there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from cb2cf.audience import Audience
from cb2cf.errors import ContentError


def cluster_engagement(audience: Audience, exposed: Iterable[str], engaged: Iterable[str]) -> dict[int, dict[str, float]]:
    """Per interest cluster: users exposed, users engaged and the engaged share.

    Users not in the space are skipped.
    """
    space = audience.space
    eng = {str(u) for u in engaged}
    out: dict[int, dict[str, float]] = {}
    for u in map(str, exposed):
        if not space.has_user(u):
            continue
        c = int(audience.labels[space.user_index(u)])
        d = out.setdefault(c, {"exposed": 0, "engaged": 0, "rate": 0.0})
        d["exposed"] += 1
        d["engaged"] += int(u in eng)
    for d in out.values():
        d["rate"] = d["engaged"] / d["exposed"]
    return out


def best_clusters(engagement: Mapping[int, Mapping[str, float]], n: int) -> list[int]:
    """The ``n`` clusters with the highest engaged share (at least one engaged user), best first."""
    ok = [(c, d) for c, d in engagement.items() if d["engaged"] > 0]
    ok.sort(key=lambda cd: (-cd[1]["rate"], -cd[1]["engaged"], cd[0]))
    return [int(c) for c, _ in ok[: max(0, n)]]


def stage_audience(audience: Audience, item_vec: np.ndarray, k: int, exposed: Iterable[str] = (),
                   engagement: Mapping[int, Mapping[str, float]] | None = None, exploration: float = 0.1,
                   aim_share: float = 0.5, aim_clusters: int = 2, seed: int | None = None,
                   explore_clusters: int | None = None) -> list[dict[str, Any]]:
    """The next pool of one video.

    Args:
        audience: Clusters over the CF space's users.
        item_vec: The video's current CF vector.
        k: Pool size (capped by the users not yet exposed).
        exposed: Users already shown the video: never in the pool again.
        engagement: :func:`cluster_engagement` of the stages so far (None or empty: nothing to aim at).
        exploration: Share of ``k`` from far clusters.
        aim_share: Share of the other slots from the best clusters.
        aim_clusters: Number of clusters aimed at.
        seed: RNG seed of the exploration draw.
        explore_clusters: Draw exploration only from the ``explore_clusters`` clusters next
            nearest after the video's nearest ones ("adjacent" interests); None: every far cluster.

    Returns:
        ``[{"user_id", "score", "reason": "score" | "amplified" | "exploration", "cluster", "why"}, ...]``.

    Raises:
        ContentError: Wrong vector shape or non-finite values, or a share outside [0, 1].
    """
    space = audience.space
    v = np.asarray(item_vec, np.float32).reshape(-1)
    if v.shape != (space.dim,) or not np.isfinite(v).all():
        raise ContentError(f"item vector must be finite with shape ({space.dim},), got {v.shape}")
    if not (0.0 <= exploration <= 1.0 and 0.0 <= aim_share <= 1.0):
        raise ContentError(f"exploration and aim_share must be in [0, 1], got {exploration}, {aim_share}")
    scores = space.user_vectors @ v
    ex = {str(u) for u in exposed}
    allowed = np.array([u not in ex for u in space.user_ids], bool)
    k = max(0, min(int(k), int(allowed.sum())))
    aim = best_clusters(engagement or {}, aim_clusters)
    far_pool = allowed & np.isin(audience.labels, _explore_clusters(audience, v, aim, explore_clusters))
    n_explore = min(int(round(exploration * k)), int(far_pool.sum()))
    aim_pool = allowed & np.isin(audience.labels, aim)
    # exploration is drawn first, so the aimed and scored slots never take its users and the pool stays k
    rng = np.random.default_rng(audience._seed(v, seed))
    drawn = audience._draw(far_pool, n_explore, rng)
    chosen = np.zeros(len(scores), bool)
    chosen[drawn] = True
    aim_pool &= ~chosen
    n_aim = min(int(round(aim_share * (k - n_explore))), int(aim_pool.sum())) if aim else 0
    masked = np.where(aim_pool, scores, -np.inf)
    aimed = np.argsort(-masked, kind="stable")[:n_aim]
    chosen[aimed] = True
    rest = np.where(allowed & ~chosen, scores, -np.inf)
    ranked = np.argsort(-rest, kind="stable")[: k - n_explore - n_aim]
    eng = engagement or {}
    out = [_entry(audience, i, scores, "score", f"score {scores[i]:.3f} against the video's current vector")
           for i in ranked]
    out += [_entry(audience, i, scores, "amplified",
                   f"amplified in cluster {audience.labels[i]}, where {eng[int(audience.labels[i])]['engaged']:.0f} "
                   f"of {eng[int(audience.labels[i])]['exposed']:.0f} exposed users engaged") for i in aimed]
    out += [_entry(audience, i, scores, "exploration", f"exploration from cluster {audience.labels[i]}")
            for i in drawn]
    return out


def _explore_clusters(audience: Audience, v: np.ndarray, aim: list[int], n: int | None) -> list[int]:
    """The clusters exploration draws from: all but the video's nearest and the aimed ones, nearest
    first, the first ``n`` of them (None: all)."""
    near = set(audience.nearest_clusters(v)) | set(aim)
    far = [c for c in audience.nearest_clusters(v, len(audience.centroids)) if c not in near]
    return far if n is None else far[: max(0, int(n))]


def _entry(audience: Audience, i: int, scores: np.ndarray, reason: str, why: str) -> dict[str, Any]:
    c = int(audience.labels[i])
    entry = {"user_id": str(audience.space.user_ids[i]), "score": float(scores[i]), "reason": reason, "cluster": c,
             "why": why}
    if reason == "exploration":
        entry["cluster_about"] = audience.cluster_about(c)
    return entry
