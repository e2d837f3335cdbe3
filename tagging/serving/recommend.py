"""A user's recommendations: warm items of the CF space, new catalog videos and stated interests, each with why.

What a user would accept:

* nothing they already interacted with (the ``interactions`` table) comes back;
* a new video is scored with its *current* vector (the CB2CF placement folded in with its
  interactions, :func:`cb2cf.foldin.fold_in`), not with its placement alone;
* a video that failed review is never recommended;
* no tag covers more than ``max_tag_share`` of the list; the list's tag coverage is reported;
* a stated interest (``tagging.store.interests``) takes its share of the list, scored against
  the interest's vector; those items say so.

Every item carries ``reason`` (a sentence) and ``reason_kind``: ``cf`` (a warm item by the
user's CF score), ``new_content`` (a new video placed by its content, with its tags),
``exploration_slot`` (a new video in a slot reserved for new videos that its score alone
would not have earned) or ``stated_interest``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from cb2cf.foldin import fold_in
from cb2cf.predictor import Predictor, tag_coverage
from cb2cf.space import CFSpace
from tagging.store.catalog import Catalog
from tagging.store.interactions import InteractionStore

logger = logging.getLogger(__name__)

REVIEW_OK = "(review_passed IS NULL OR review_passed = true)"
"""Rows that did not fail review (no review ran, or it passed)."""


class Interest(Protocol):
    """What the recommendations need of a stated interest."""

    label: str
    share: float
    vector: np.ndarray


def _candidates(catalog: Catalog, interactions: InteractionStore, space: CFSpace, queries: Sequence[np.ndarray],
                k: int) -> dict[str, dict[str, Any]]:
    """New videos worth scoring: the best placements for each query vector, plus videos with interactions
    (their vectors moved). Warm items (in the space) and videos that failed review are left out."""
    if not catalog.count() or "cf_vector" not in catalog.table.schema.names:
        return {}
    rows: dict[str, dict[str, Any]] = {}
    for q in queries:
        for hit in catalog.search(q, "cf_vector", k=4 * k, where=f"cf_vector IS NOT NULL AND {REVIEW_OK}", metric="dot"):
            rows[str(hit["video_id"])] = hit
    moved = [v for v in interactions.videos_with_events() if v not in rows]
    for r in catalog.get_many(moved) if moved else []:
        if r.get("cf_vector") is not None and r.get("review_passed") is not False:
            rows[str(r["video_id"])] = r
    return {v: r for v, r in rows.items() if v not in space._iidx}


def current_vectors(rows: Mapping[str, Mapping[str, Any]], interactions: InteractionStore, space: CFSpace,
                    ) -> tuple[np.ndarray, dict[str, float]]:
    """Each row's current CF vector (placement folded in with its interactions) and fold-in blend."""
    weights = interactions.weights_many(list(rows))
    vecs, blends = [], {}
    for vid, row in rows.items():
        prior = np.asarray(row["cf_vector"], np.float32)
        per_user = {u: w for u, w in weights.get(vid, {}).items() if space.has_user(u)}
        idx = np.array([space.user_index(u) for u in per_user], int)
        cfg = interactions.config
        v, blend = fold_in(prior, space.user_vectors[idx], cfg.confidence(np.array(list(per_user.values()))),
                           cfg.strength(space.user_vectors))
        vecs.append(v)
        blends[vid] = blend
    return (np.stack(vecs) if vecs else np.zeros((0, space.dim), np.float32)), blends


def _item(i: str, score: float, src: str, row: Mapping[str, Any] | None, blend: float, reserved: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"id": i, "score": round(score, 6), "source": src}
    if src == "warm":
        return item | {"reason_kind": "cf", "reason": f"collaborative filtering: your CF score {score:.3f} "
                                                     "(users with your tastes watched it)"}
    tags = list((row or {}).get("tags") or [])
    how = (f"its content placement folded in with interactions (blend {blend:.2f})" if blend > 0
           else "its content (CB2CF)")
    kind = "exploration_slot" if reserved else "new_content"
    why = (f"new video placed in your interest space from {how}; tags: {', '.join(tags) or 'none'}; "
           f"your score {score:.3f}")
    if reserved:
        why += "; shown in a slot reserved for new videos"
    return item | {"reason_kind": kind, "reason": why, "tags": tags, "blend": round(blend, 6)}


def _interest_items(space: CFSpace, interests: Sequence[Interest], k: int, new_ids: np.ndarray, new_vecs: np.ndarray,
                    exclude: set[str]) -> list[dict[str, Any]]:
    """The items of each stated interest for its share of ``k`` (best by the interest vector, warm or new)."""
    out: list[dict[str, Any]] = []
    ids = np.concatenate([space.item_ids, new_ids])
    vecs = np.concatenate([space.item_vectors, new_vecs]) if len(new_ids) else space.item_vectors
    for it in interests:
        n = int(round(it.share * k))
        s = vecs @ np.asarray(it.vector, np.float32)
        for j in np.argsort(-s, kind="stable"):
            if n <= 0:
                break
            if str(ids[j]) in exclude:
                continue
            exclude.add(str(ids[j]))
            n -= 1
            src = "warm" if j < len(space.item_ids) else "new"
            out.append({"id": str(ids[j]), "score": round(float(s[j]), 6), "source": src,
                        "reason_kind": "stated_interest", "interest": it.label,
                        "reason": f"from your stated interest {it.label!r} (score {float(s[j]):.3f} against it)"})
    return out


def recommend(space: CFSpace, catalog: Catalog, interactions: InteractionStore, user_id: str, k: int = 20,
              new_share: float = 0.2, max_tag_share: float = 0.5, interests: Sequence[Interest] = ()) -> dict[str, Any]:
    """A user's list; see the module docs.

    Returns:
        ``{"user_id", "new_share", "max_tag_share", "interest_share", "items": [...], "tag_coverage"}``.

    Raises:
        UnknownIdError: ``user_id`` is not in the space.
        ContentError: A share outside its range.
    """
    u = space.user_vectors[space.user_index(user_id)]
    seen = interactions.videos_of_user(user_id)
    rows = _candidates(catalog, interactions, space, [u, *(np.asarray(i.vector, np.float32) for i in interests)], k)
    new_ids = np.array(list(rows), dtype=str)
    new_vecs, blends = current_vectors(rows, interactions, space)
    share = min(1.0, sum(float(i.share) for i in interests))
    picked = _interest_items(space, interests, k, new_ids, new_vecs, set(seen)) if interests else []
    k_main = k - len(picked)
    tags = {v: list(r.get("tags") or []) for v, r in rows.items()}
    ranked = Predictor(space).recommend(user_id, k_main, list(new_ids), new_vecs if len(new_ids) else None, new_share,
                                        exclude=sorted(seen | {p["id"] for p in picked}), item_tags=tags,
                                        max_tag_share=max_tag_share)
    cutoff = _cutoff(np.concatenate([space.item_vectors @ u, new_vecs @ u]), k_main)
    items = [_item(str(i), float(sc), str(src), rows.get(str(i)), blends.get(str(i), 0.0),
                   src == "new" and float(sc) < cutoff) for i, sc, src in zip(ranked.ids, ranked.scores, ranked.sources)]
    items = _interleave(items, picked)
    slate_tags = [tags.get(it["id"], []) for it in items]
    return {"user_id": user_id, "new_share": new_share, "max_tag_share": max_tag_share, "interest_share": share,
            "items": items, "tag_coverage": tag_coverage(slate_tags)}


def _cutoff(scores: np.ndarray, n: int) -> float:
    """The ``n``-th best score (what a new item must reach to earn a slot by score alone)."""
    if n <= 0 or len(scores) == 0:
        return float("inf")
    return float(np.sort(scores)[::-1][min(n, len(scores)) - 1])


def _interleave(main: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spread ``extra`` evenly through ``main`` (the stated-interest items among the others)."""
    if not extra:
        return main
    out, step = list(main), (len(main) + len(extra)) / len(extra)
    for n, it in enumerate(extra):
        out.insert(min(len(out), int(n * step + step / 2)), it)
    return out
