"""A small LanceDB table beside the catalog, keyed by one id column (exposure states, stated interests)."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from tagging.errors import CatalogError
from tagging.store.lance import LazyTable
from tagging.store.writer import write_lock


class SideTable(LazyTable):
    """A keyed table in the catalog's LanceDB directory, created on first use, written under the write lock.

    Subclasses set ``NAME``, ``KEY`` and ``SCHEMA``.

    Args:
        uri: LanceDB directory (the catalog's).
    """

    KEY: ClassVar[str]

    def upsert(self, rows: list[dict[str, Any]], what: str) -> None:
        """Insert or replace ``rows`` by ``KEY`` in one commit.

        Raises:
            CatalogError: The write failed (``what`` names it).
        """
        try:
            with write_lock(self.uri, self.NAME):
                (self.table.merge_insert(self.KEY).when_matched_update_all().when_not_matched_insert_all()
                 .execute(pa.Table.from_pylist(rows, schema=self.SCHEMA)))
        except Exception as exc:
            raise CatalogError(self.uri, f"cannot store {what}: {exc}") from exc
