"""The ``exposure`` table: each video's place on the cold-start ladder, beside the catalog.

One row per video: its state (``pool``, ``promoted:N``, ``held``, ``stopped``, ``graduated``),
its stage, when the stage opened, and the whole :class:`cb2cf.exposure.Exposure` (users
shown, the history of stages and decisions with their reasons) as JSON.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from cb2cf.exposure import Exposure
from tagging.errors import CatalogError
from tagging.store.catalog import id_filter, validate_video_id
from tagging.store.lance import sql_string
from tagging.store.sidetable import SideTable
from tagging.store.writer import write_lock

logger = logging.getLogger(__name__)

EXPOSURE_TABLE = "exposure"
SCHEMA = pa.schema([
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("state", pa.string(), nullable=False),
    pa.field("stage", pa.int32(), nullable=False),
    pa.field("stage_opened_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("exposure_json", pa.string(), nullable=False),
    pa.field("updated_at", pa.timestamp("us", tz="UTC"), nullable=False),
])


class ExposureStore(SideTable):
    """Exposure states in LanceDB (the ``exposure`` table beside the catalog)."""

    NAME, KEY, SCHEMA = EXPOSURE_TABLE, "video_id", SCHEMA

    def put(self, exposures: list[Exposure], opened_at: dict[str, datetime] | None = None) -> None:
        """Insert or replace the rows of ``exposures`` in one commit.

        Args:
            exposures: The states to store.
            opened_at: When each video's current stage opened (default: kept, or now for a new row).

        Raises:
            CatalogError: The write failed.
        """
        if not exposures:
            return
        now = datetime.now(UTC)
        old = {r["video_id"]: r for r in self._rows([e.video_id for e in exposures])}
        rows = []
        for e in exposures:
            opened = (opened_at or {}).get(e.video_id) or (old[e.video_id]["stage_opened_at"] if e.video_id in old
                                                            else now)
            rows.append({"video_id": e.video_id, "state": e.state, "stage": int(e.stage), "stage_opened_at": opened,
                         "exposure_json": json.dumps(e.to_dict()), "updated_at": now})
        self.upsert(rows, f"{len(rows)} exposure states")

    def _rows(self, video_ids: list[str]) -> list[dict[str, Any]]:
        if not video_ids:
            return []
        self.table.checkout_latest()
        return self.table.search().where(id_filter(video_ids)).limit(len(video_ids) + 1).to_list()

    def get(self, video_id: str) -> tuple[Exposure, datetime] | None:
        """A video's state and when its stage opened, or None when it never entered the loop.

        Raises:
            InvalidVideoId: Malformed id.
        """
        rows = self._rows([validate_video_id(video_id)])
        return (Exposure.from_dict(json.loads(rows[0]["exposure_json"])), rows[0]["stage_opened_at"]) if rows else None

    def in_states(self, prefixes: tuple[str, ...]) -> list[tuple[Exposure, datetime]]:
        """Every video whose state starts with one of ``prefixes`` (e.g. ``("pool", "promoted")``)."""
        self.table.checkout_latest()
        where = " OR ".join(f"state LIKE {sql_string(p + '%')}" for p in prefixes)
        rows = self.table.search().where(where).limit(None).to_list()
        return [(Exposure.from_dict(json.loads(r["exposure_json"])), r["stage_opened_at"]) for r in rows]

    def delete(self, video_id: str) -> int:
        """Remove a video's exposure state (a takedown); returns the rows removed (0 or 1).

        Raises:
            InvalidVideoId: Malformed id.
            CatalogError: The delete failed.
        """
        n = len(self._rows([validate_video_id(video_id)]))
        if n:
            try:
                with write_lock(self.uri, EXPOSURE_TABLE):
                    self.table.delete(f"video_id = {sql_string(video_id)}")
            except Exception as exc:
                raise CatalogError(video_id, f"cannot delete the exposure state: {exc}") from exc
        return n
