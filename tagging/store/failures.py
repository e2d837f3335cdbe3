"""The ``failures`` table: one row per source uri that failed, with its error and attempts.

A backfill records every typed failure here and never stops for it; a later run skips
these uris unless asked to retry, and a success clears them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from tagging.errors import CatalogError
from tagging.store.lance import LazyTable, sql_string
from tagging.store.writer import write_lock

FAILURES_TABLE = "failures"
FAILURE_SCHEMA = pa.schema([
    pa.field("uri", pa.string(), nullable=False),
    pa.field("video_id", pa.string()),
    pa.field("error_class", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("attempts", pa.int32(), nullable=False),
    pa.field("failed_at", pa.timestamp("us", tz="UTC"), nullable=False),
])


class FailureLog(LazyTable):
    """The ``failures`` table: one row per source uri that failed, with attempts.

    Args:
        uri: LanceDB URI (the catalog's).
        storage_options: Object-store options for ``uri``.
    """

    NAME = FAILURES_TABLE
    SCHEMA = FAILURE_SCHEMA

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        super().__init__(uri, storage_options)
        self.known: dict[str, dict[str, Any]] = {}
        if self.exists():
            self.known = {r["uri"]: r for r in self.table.to_arrow().to_pylist()}

    def record(self, uri: str, video_id: str | None, error_class: str, reason: str) -> None:
        """Insert or update the failure of ``uri`` (attempts + 1).

        Raises:
            CatalogError: The write failed.
        """
        prev = self.known.get(uri, {})
        row = {"uri": uri, "video_id": video_id, "error_class": error_class, "reason": reason[:2000],
               "attempts": int(prev.get("attempts", 0)) + 1, "failed_at": datetime.now(UTC)}
        try:
            with write_lock(self.uri, FAILURES_TABLE):
                self.table.checkout_latest()
                self.table.merge_insert("uri").when_matched_update_all().when_not_matched_insert_all() \
                    .execute(pa.Table.from_pylist([row], schema=FAILURE_SCHEMA))
        except Exception as exc:
            raise CatalogError(self.uri, f"cannot record failure of {uri}: {exc}") from exc
        self.known[uri] = row

    def rows(self) -> list[dict[str, Any]]:
        """Every recorded failure, most recent first."""
        return sorted(self.known.values(), key=lambda r: (r["failed_at"], r["uri"]), reverse=True)

    def clear_all(self) -> int:
        """Forget every failure (the next backfill retries them all); the number forgotten.

        Raises:
            CatalogError: The delete failed.
        """
        n = len(self.known)
        if n:
            try:
                with write_lock(self.uri, FAILURES_TABLE):
                    self.table.checkout_latest()
                    self.table.delete("true")
            except Exception as exc:
                raise CatalogError(self.uri, f"cannot clear the failures table: {exc}") from exc
        self.known.clear()
        return n

    def clear(self, uris: list[str]) -> None:
        """Forget failures of uris that have now succeeded."""
        uris = [u for u in uris if u in self.known]
        if not uris:
            return
        with write_lock(self.uri, FAILURES_TABLE):
            self.table.checkout_latest()
            for i in range(0, len(uris), 500):
                self.table.delete("uri IN (" + ", ".join(sql_string(u) for u in uris[i:i + 500]) + ")")
        for u in uris:
            self.known.pop(u, None)
