"""The ``interactions`` table (views, completions, likes, shares) and the fold-in of item vectors.

Events are stored in LanceDB; :meth:`InteractionStore.warm_vector` folds the interacting
users' vectors into the content placement with :func:`cb2cf.foldin.fold_in`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cb2cf.foldin import FoldInConfig, fold_in
from cb2cf.space import CFSpace
from tagging.errors import CatalogError, InvalidInteraction
from tagging.store.catalog import validate_video_id
from tagging.store.lance import LazyTable, sql_string
from tagging.store.writer import write_lock

logger = logging.getLogger(__name__)

INTERACTIONS_TABLE = "interactions"
SCHEMA = pa.schema([
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("event", pa.string(), nullable=False),
    pa.field("weight", pa.float32(), nullable=False),
    pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
])


class InteractionStore(LazyTable):
    """Interactions in LanceDB and the warm-up of item vectors.

    Args:
        uri: LanceDB directory (the catalog's).
        config: Event weights and prior strength.
    """

    NAME = INTERACTIONS_TABLE
    SCHEMA = SCHEMA

    def __init__(self, uri: str | Path, config: FoldInConfig | None = None) -> None:
        super().__init__(uri)
        self.config = config or FoldInConfig()

    def record(self, video_id: str, events: Iterable[dict[str, Any]]) -> int:
        """Append events for one video: ``{"user_id", "event", "weight"?, "ts"?}``.

        ``weight`` defaults to the configured weight of ``event``.

        Returns:
            Number of events stored.

        Raises:
            InvalidVideoId: Malformed video id.
            InvalidInteraction: Unknown event kind, empty user id or a non-positive weight.
            CatalogError: The write failed.
        """
        validate_video_id(video_id)
        now = datetime.now(UTC)
        rows = []
        for e in events:
            kind = str(e.get("event", ""))
            if kind not in self.config.event_weights:
                raise InvalidInteraction(video_id, f"unknown event {kind!r}; expected one of {sorted(self.config.event_weights)}")
            user = str(e.get("user_id") or "")
            if not user or len(user) > 256:
                raise InvalidInteraction(video_id, "user_id must be a non-empty string of at most 256 characters")
            weight = float(e["weight"]) if e.get("weight") is not None else self.config.event_weights[kind]
            if not np.isfinite(weight) or weight <= 0:
                raise InvalidInteraction(video_id, f"weight must be a positive number, got {weight}")
            rows.append({"video_id": video_id, "user_id": user, "event": kind, "weight": weight, "ts": e.get("ts") or now})
        if not rows:
            return 0
        try:
            with write_lock(self.uri, INTERACTIONS_TABLE):
                self.table.add(pa.Table.from_pylist(rows, schema=SCHEMA))
        except Exception as exc:
            raise CatalogError(self.uri, f"cannot store {len(rows)} interactions: {exc}") from exc
        return len(rows)

    def delete(self, video_id: str) -> int:
        """Remove every event of ``video_id`` (a take-down); the number removed. A missing table stays missing.

        Raises:
            InvalidVideoId: Malformed video id.
            CatalogError: The delete failed.
        """
        validate_video_id(video_id)
        if not self.exists():
            return 0
        where = f"video_id = {sql_string(video_id)}"
        try:
            with write_lock(self.uri, INTERACTIONS_TABLE):
                self.table.checkout_latest()
                n = int(self.table.count_rows(where))
                if n:
                    self.table.delete(where)
        except Exception as exc:
            raise CatalogError(self.uri, f"cannot delete the interactions of {video_id}: {exc}") from exc
        return n

    def weights(self, video_id: str) -> dict[str, float]:
        """Summed event weight per user for one video."""
        validate_video_id(video_id)
        self.table.checkout_latest()
        data = self.table.search().where(f"video_id = {sql_string(video_id)}").select(["user_id", "weight"]) \
            .limit(None).to_arrow()
        out: dict[str, float] = {}
        for u, w in zip(data.column("user_id").to_pylist(), data.column("weight").to_pylist()):
            out[u] = out.get(u, 0.0) + float(w)
        return out

    def events_many(self, video_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Every event of each of ``video_ids`` that has any (one read): ``{"user_id", "event", "weight"}``."""
        ids = [validate_video_id(v) for v in dict.fromkeys(video_ids)]
        if not ids:
            return {}
        self.table.checkout_latest()
        where = "video_id IN (" + ", ".join(sql_string(v) for v in ids) + ")"
        data = self.table.search().where(where).select(["video_id", "user_id", "event", "weight"]).limit(None) \
            .to_arrow().to_pylist()
        out: dict[str, list[dict[str, Any]]] = {}
        for r in data:
            out.setdefault(r["video_id"], []).append({"user_id": r["user_id"], "event": r["event"],
                                                      "weight": float(r["weight"])})
        return out

    def weights_many(self, video_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """Summed event weight per user for each of ``video_ids`` that has events (one read)."""
        out: dict[str, dict[str, float]] = {}
        for v, evs in self.events_many(video_ids).items():
            for e in evs:
                out.setdefault(v, {})
                out[v][e["user_id"]] = out[v].get(e["user_id"], 0.0) + e["weight"]
        return out

    def videos_of_user(self, user_id: str) -> set[str]:
        """Every video ``user_id`` has an event for (what a recommendation must not repeat)."""
        self.table.checkout_latest()
        data = self.table.search().where(f"user_id = {sql_string(str(user_id))}").select(["video_id"]) \
            .limit(None).to_arrow()
        return set(data.column("video_id").to_pylist())

    def videos_with_events(self, limit: int = 1000) -> list[str]:
        """Up to ``limit`` videos that have events, most recent event first."""
        self.table.checkout_latest()
        data = self.table.search().select(["video_id", "ts"]).limit(None).to_arrow().to_pylist()
        latest: dict[str, Any] = {}
        for r in data:
            if r["video_id"] not in latest or r["ts"] > latest[r["video_id"]]:
                latest[r["video_id"]] = r["ts"]
        return sorted(latest, key=lambda v: latest[v], reverse=True)[:limit]

    def warm_vector(self, video_id: str, prior: np.ndarray, space: CFSpace) -> dict[str, Any]:
        """The item's current CF vector: the fold-in of its interactions against ``prior``.

        Users not in the space (new since the last retrain) are counted but not used.

        Returns:
            ``{"video_id", "vector", "prior", "blend", "n_events_users", "unknown_users", "weight"}``.
        """
        t0 = time.perf_counter()
        per_user = self.weights(video_id)
        known = [(space.user_index(u), w) for u, w in per_user.items() if space.has_user(u)]
        idx = np.array([i for i, _ in known], int)
        w = np.array([x for _, x in known], np.float64)
        vec, blend = fold_in(prior, space.user_vectors[idx], self.config.confidence(w),
                             self.config.strength(space.user_vectors))
        logger.debug("warm-up of %s from %d users in %.1f ms", video_id, len(known), (time.perf_counter() - t0) * 1e3)
        return {"video_id": video_id, "vector": vec.tolist(), "prior": np.asarray(prior, np.float32).tolist(),
                "blend": round(blend, 6), "users": len(known), "unknown_users": len(per_user) - len(known),
                "weight": float(w.sum())}
