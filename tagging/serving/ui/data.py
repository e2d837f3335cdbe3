"""What the web pages show, read from the service's catalog, CF space and interactions.

Everything here reads; nothing creates a table. The catalog listing filters in Python over a
few light columns (no vectors, no images), which suits catalogs a person browses page by page.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tagging.errors import MediaNotFound, TaggingError
from tagging.store.catalog import Catalog, id_filter, validate_video_id
from tagging.store.interactions import INTERACTIONS_TABLE
from tagging.store.lance import sql_string, table_exists

logger = logging.getLogger(__name__)

LIST_COLUMNS = ["video_id", "caption", "tags", "tag_scores", "review_passed", "review_json", "duration_s",
                "ingested_at", "transcript", "ocr_text", "cf_vector"]
REVIEW_STATES = ("passed", "failed", "unreviewed")


class Hook(Protocol):
    """What the pages need of :class:`tagging.serving.hook.UploadHook`."""

    ready: bool

    @property
    def catalog(self) -> Catalog: ...

    @property
    def space(self) -> Any: ...

    @property
    def interactions(self) -> Any: ...

    def get(self, video_id: str) -> dict[str, Any] | None: ...

    def item_vector(self, video_id: str) -> dict[str, Any]: ...

    def audience_model(self) -> Any: ...

    def recommend(self, user_id: str, k: int = 20, new_share: float = 0.2) -> dict[str, Any]: ...


@dataclass
class CatalogQuery:
    """Search and filters of the catalog page.

    Attributes:
        q: Words that must all occur in the id, caption, tags, transcript or on-screen text.
        tag: Only videos with this tag.
        review: ``passed``, ``failed`` or ``unreviewed`` (empty: all).
        limit: Videos per page.
        offset: Videos skipped (paging).
    """

    q: str = ""
    tag: str = ""
    review: str = ""
    limit: int = 24
    offset: int = 0


@dataclass
class CatalogPage:
    """One page of the catalog and what the whole catalog looks like."""

    items: list[dict[str, Any]]
    matched: int
    total: int
    tag_counts: list[tuple[str, int]]
    review_counts: dict[str, int]
    query: CatalogQuery = field(default_factory=CatalogQuery)


def review_state(row: dict[str, Any]) -> str:
    """``passed``, ``failed`` or ``unreviewed`` for a row."""
    passed = row.get("review_passed")
    return "unreviewed" if passed is None else ("passed" if passed else "failed")


def _loads(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def _matches(row: dict[str, Any], query: CatalogQuery) -> bool:
    if query.tag and query.tag not in (row.get("tags") or []):
        return False
    if query.review and review_state(row) != query.review:
        return False
    if query.q:
        hay = " ".join(str(row.get(k) or "") for k in ("video_id", "caption", "transcript", "ocr_text")).lower()
        hay += " " + " ".join(row.get("tags") or [])
        return all(word in hay for word in query.q.lower().split())
    return True


def _list_item(row: dict[str, Any]) -> dict[str, Any]:
    review = _loads(row.get("review_json"), {})
    return {
        "video_id": row["video_id"], "caption": row.get("caption") or "",
        "tags": list(zip(row.get("tags") or [], [round(float(s), 2) for s in row.get("tag_scores") or []])),
        "review": review_state(row), "blocking": review.get("blocking") or [],
        "duration_s": float(row.get("duration_s") or 0.0), "placed": row.get("cf_vector") is not None,
    }


def catalog_page(hook: Hook, query: CatalogQuery) -> CatalogPage:
    """The catalog filtered by ``query``, newest first, one page of it, with tag and review counts."""
    catalog = hook.catalog
    rows: list[dict[str, Any]] = []
    if catalog.count():
        catalog.table.checkout_latest()  # rows written by other processes too
        rows = catalog.columns([c for c in LIST_COLUMNS if c in catalog.table.schema.names])
    rows.sort(key=lambda r: (r.get("ingested_at") is not None, r.get("ingested_at")), reverse=True)
    tag_counts = Counter(t for r in rows for t in (r.get("tags") or []))
    review_counts = Counter(review_state(r) for r in rows)
    hits = [r for r in rows if _matches(r, query)]
    page = hits[query.offset: query.offset + query.limit]
    return CatalogPage([_list_item(r) for r in page], len(hits), len(rows), tag_counts.most_common(),
                       {s: review_counts.get(s, 0) for s in REVIEW_STATES}, query)


def image(hook: Hook, video_id: str, index: int | None = None) -> bytes | None:
    """The poster JPEG (``index`` None) or sampled frame ``index`` of a video; None when not stored.

    Raises:
        InvalidVideoId: Malformed id.
    """
    catalog = hook.catalog
    column = "thumbnail" if index is None else "frame_thumbs"
    if not catalog.count():
        return None
    catalog.table.checkout_latest()  # rows written by other processes too
    if column not in catalog.table.schema.names:
        return None
    rows = catalog.table.search().where(id_filter([video_id])).select([column]).limit(1).to_list()
    value = rows[0][column] if rows else None
    if index is None or value is None:
        return value
    return value[index] if 0 <= index < len(value) else None


def _tag_view(tag: dict[str, Any]) -> dict[str, Any]:
    """A stored tag with its evidence made readable: one line per modality, with times where known."""
    lines = []
    for modality, ev in (tag.get("evidence") or {}).items():
        ev = dict(ev)
        score = ev.pop("score", None)
        times: list[float] = [float(t) for t in ev.pop("timestamps", []) or []]
        parts = []
        for hit in ev.pop("imagenet", []) or []:
            at = f" at {hit['timestamp']:.1f} s" if hit.get("timestamp") is not None else ""
            parts.append(f"{hit['class']} (p={hit['prob']:.2f}){at}")
            if hit.get("timestamp") is not None:
                times.append(float(hit["timestamp"]))
        for start, end, text in ev.pop("segments", []) or []:
            parts.append(f"\u201c{text.strip()}\u201d {start:.1f}\u2013{end:.1f} s")
            times.append(float(start))
        ev.pop("model", None)
        parts += [f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in ev.items()]
        lines.append({"modality": modality, "score": score, "detail": "; ".join(parts), "times": sorted(set(times))})
    return {"id": tag.get("id"), "name": tag.get("name") or tag.get("id"), "score": float(tag.get("score") or 0.0),
            "evidence": lines, "subtopics": tag.get("subtopics") or []}


def _interaction_weights(hook: Hook, video_id: str) -> dict[str, float]:
    store = hook.interactions
    if not table_exists(store.db, INTERACTIONS_TABLE):
        return {}
    return store.weights(video_id)


def _placement(hook: Hook, video_id: str, row: dict[str, Any]) -> dict[str, Any] | None:
    """The item's CF placement: nearest warm items of its current vector, its seed audience, fold-in state."""
    from cb2cf.predictor import Predictor

    if row.get("cf_vector") is None or hook.space is None:
        return None
    state = hook.item_vector(video_id)
    vec = np.asarray(state["vector"], np.float32)
    near = Predictor(hook.space).similar_items(vec, k=8)
    audience = hook.audience_model().seed(vec, 12)
    return {"blend": float(state["blend"]), "users": int(state["users"]), "weight": float(state["weight"]),
            "model": row.get("cf_model_version"),
            "nearest": [(str(i), round(float(s), 3)) for i, s in zip(near.ids, near.scores)],
            "audience": [{**u, "score": round(float(u["score"]), 3)} for u in audience]}


ExposureFn = Callable[[str], dict[str, Any]]
InterestsFn = Callable[[str], dict[str, Any]]


def _exposure(fn: ExposureFn | None, video_id: str) -> dict[str, Any] | None:
    """A video's exposure state in the cold-start loop, when the service has one.

    ``fn(video_id)`` answers ``{"state", "stage", "exposed_users", "pool_sizes", "history": [...]}``
    (history entries ``{"kind": "stage", "stage", "users", "by_reason"}`` and ``{"kind": "decision",
    "stage", "action", "metrics", "threshold", "rule"}``) or raises a ``TaggingError`` for a video
    outside the loop.
    """
    if fn is None:
        return None
    try:
        ex = fn(video_id)
    except TaggingError as exc:
        logger.info("no exposure state for %s: %s", video_id, exc)
        return None
    history = ex.get("history") or []
    stages = [h for h in history if h.get("kind") == "stage"]
    decisions = [h for h in history if h.get("kind") == "decision"]
    return {**ex, "stages": stages, "decisions": decisions}


def video_view(hook: Hook, video_id: str, exposure: ExposureFn | None = None) -> dict[str, Any]:
    """Everything the video page shows (``exposure``: the cold-start loop's state of a video, if any).

    Raises:
        InvalidVideoId: Malformed id.
        MediaNotFound: The video is not in the catalog.
    """
    validate_video_id(video_id)
    row = hook.get(video_id)
    if row is None:
        raise MediaNotFound(video_id, "video is not in the catalog")
    transcript = _loads(row.get("transcript_json"), None)
    weights = _interaction_weights(hook, video_id)
    return {
        "row": row,
        "metadata": _loads(row.get("metadata_json"), {}),
        "tags": [_tag_view(t) for t in _loads(row.get("tags_json"), [])],
        "frames": list(enumerate(row.get("frame_times") or [])),
        "transcript": transcript,
        "ocr": _loads(row.get("ocr_json"), None),
        "review": _loads(row.get("review_json"), None),
        "review_state": review_state(row),
        "placement": _placement(hook, video_id, row),
        "interactions": sorted(weights.items(), key=lambda kv: -kv[1]),
        "exposure": _exposure(exposure, video_id),
        "extractors": _loads(row.get("extractors_json"), {}),
    }


def _user_events(hook: Hook, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
    store = hook.interactions
    if not table_exists(store.db, INTERACTIONS_TABLE):
        return []
    store.table.checkout_latest()
    rows = store.table.search().where(f"user_id = {sql_string(user_id)}").select(["video_id", "event", "weight", "ts"]) \
        .limit(None).to_list()
    return sorted(rows, key=lambda r: r["ts"], reverse=True)[:limit]


def _interests(fn: InterestsFn | None, user_id: str) -> list[dict[str, Any]]:
    """A user's stated interests ``[{"label", "kind", "share"}]``, when the service stores them."""
    if fn is None:
        return []
    try:
        return list(fn(user_id).get("interests") or [])
    except TaggingError as exc:
        logger.info("no interests for %s: %s", user_id, exc)
        return []


def user_view(hook: Hook, user_id: str, k: int = 20, new_share: float = 0.2,
              interests: InterestsFn | None = None) -> dict[str, Any]:
    """The user page: recommendations with why, what the user did, and stated interests (``interests``, if any).

    Raises:
        UnknownUser: Not a user of the CF space.
        TaggingError: No CF space configured.
    """
    rec = hook.recommend(user_id, k, new_share)
    ids = [str(it["id"]) for it in rec["items"]]
    catalog, catalog_ids = hook.catalog, set()
    if ids and catalog.count():
        found = catalog.table.search().where(id_filter(ids)).select(["video_id"]).limit(len(ids) + 1).to_list()
        catalog_ids = {r["video_id"] for r in found}
    return {"user_id": user_id, "new_share": new_share, "recs": rec["items"], "catalog_ids": catalog_ids,
            "events": _user_events(hook, user_id), "interests": _interests(interests, user_id)}
