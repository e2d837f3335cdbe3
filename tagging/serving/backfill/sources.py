"""Backfill inputs and bookkeeping: what to process, what is done, what failed.

A backfill source is one of

* a directory of media files (captions from its ``captions.json``, ids from
  :func:`~tagging.inputs.default_video_id`);
* a CSV or JSONL manifest with ``uri`` (or ``path``) and optional ``video_id``,
  ``caption``; other columns become metadata; relative paths are relative to the manifest;
  ``http(s)://`` URIs are downloaded at decode time (:mod:`tagging.serving.backfill.fetch`);
* a LanceDB database directory whose table (default ``videos``) has ``video_id``,
  ``source_uri`` and ``caption`` (e.g. re-processing an existing catalog).

Failures live in the table ``failures`` of the catalog's database, keyed by ``uri``.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from tagging.errors import CatalogError, TaggingError
from tagging.inputs import default_video_id, expand_paths, load_captions
from tagging.serving.backfill.fetch import is_remote, url_video_id
from tagging.store.catalog import Catalog, sql_string
from tagging.store.writer import write_lock

logger = logging.getLogger(__name__)

FAILURES_TABLE = "failures"
FAILURE_SCHEMA = pa.schema([
    pa.field("uri", pa.string(), nullable=False),
    pa.field("video_id", pa.string()),
    pa.field("error_class", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("attempts", pa.int32(), nullable=False),
    pa.field("failed_at", pa.timestamp("us", tz="UTC"), nullable=False),
])


class SourceError(TaggingError):
    """A backfill source cannot be read (unknown kind, malformed manifest)."""


@dataclass
class Item:
    """One video to backfill."""

    uri: str
    video_id: str | None = None
    caption: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _is_lancedb(path: Path) -> bool:
    return path.is_dir() and any(c.suffix == ".lance" and c.is_dir() for c in path.iterdir())


def read_source(source: str | Path, table: str = "videos") -> list[Item]:
    """Items of a directory, CSV/JSONL manifest or LanceDB table, in source order, unique by uri.

    Raises:
        SourceError: Missing source, unknown format, or a manifest row without a uri.
    """
    src = Path(source)
    if not src.exists():
        raise SourceError(str(source), "backfill source does not exist")
    if _is_lancedb(src):
        items = _from_lancedb(src, table)
    elif src.is_dir():
        captions = load_captions([src])
        items = [Item(str(p.resolve()), None, captions.get(p.name)) for p in expand_paths([src])]
    elif src.suffix.lower() == ".csv":
        with open(src, newline="") as fh:
            items = [_from_record(r, src, i) for i, r in enumerate(csv.DictReader(fh))]
    elif src.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        items = []
        for i, line in enumerate(src.read_text().splitlines()):
            if line.strip():
                try:
                    items.append(_from_record(json.loads(line), src, i))
                except ValueError as exc:
                    raise SourceError(f"{src}:{i + 1}", f"not valid JSON: {exc}") from exc
    else:
        raise SourceError(str(source), "expected a directory, a .csv/.jsonl manifest or a LanceDB directory")
    seen: set[str] = set()
    unique = []
    for it in items:
        if it.uri not in seen:
            seen.add(it.uri)
            unique.append(it)
    return unique


def _from_record(rec: dict[str, Any], manifest: Path, i: int) -> Item:
    rec = {k.strip(): v for k, v in rec.items() if k}
    uri = rec.pop("uri", None) or rec.pop("path", None)
    if not uri:
        raise SourceError(f"{manifest}:{i + 1}", "manifest row has no 'uri' (or 'path')")
    uri = str(uri)
    if "://" not in uri and not Path(uri).is_absolute():
        uri = str((manifest.parent / uri).resolve())
    vid = rec.pop("video_id", None) or None
    caption = rec.pop("caption", None)
    return Item(uri, vid, caption, {k: v for k, v in rec.items() if v not in (None, "")})


def _from_lancedb(db: Path, table: str) -> list[Item]:
    import lancedb

    try:
        t = lancedb.connect(str(db)).open_table(table)
        cols = ["video_id", "source_uri", "caption", "metadata_json"]
        data = t.search().select(cols).limit(t.count_rows()).to_arrow().to_pylist() if t.count_rows() else []
    except Exception as exc:
        raise SourceError(str(db), f"cannot read LanceDB table {table!r}: {exc}") from exc
    return [Item(r["source_uri"], r["video_id"], r["caption"] or None, json.loads(r["metadata_json"] or "{}")) for r in data]


def resolve_id(item: Item) -> str:
    """The item's video id (derived from the file when the source gives none).

    Raises:
        TaggingError: The file cannot be read to derive an id.
    """
    if item.video_id is None and is_remote(item.uri):
        item.video_id = url_video_id(item.uri)  # planning never downloads
    if item.video_id is None:
        from tagging.inputs import resolve_source  # file:// URIs are percent-decoded there

        try:
            item.video_id = default_video_id(resolve_source(item.uri))
        except OSError as exc:
            from tagging.errors import MediaNotFound

            raise MediaNotFound(item.uri, f"cannot read file: {exc.strerror or exc}") from exc
    return item.video_id


def catalog_state(catalog: Catalog) -> dict[str, tuple[dict[str, str], str | None]]:
    """``video_id -> (extractor ids, cf_model_version)`` of every stored row."""
    if catalog.count() == 0:
        return {}
    catalog.table.checkout_latest()
    data = catalog.columns(["video_id", "extractors_json", "cf_model_version"])
    return {r["video_id"]: (json.loads(r["extractors_json"] or "{}"), r["cf_model_version"]) for r in data}


class FailureLog:
    """The ``failures`` table: one row per source uri that failed, with attempts."""

    def __init__(self, uri: str) -> None:
        import lancedb

        self.uri = uri
        self.db = lancedb.connect(uri)
        self._table: Any = None
        self.known: dict[str, dict[str, Any]] = {}
        if self._exists():
            self.known = {r["uri"]: r for r in self.table.to_arrow().to_pylist()}

    def _exists(self) -> bool:
        names = self.db.list_tables()
        return FAILURES_TABLE in list(getattr(names, "tables", names))

    @property
    def table(self) -> Any:
        """The table, created on first use."""
        if self._table is None:
            self._table = self.db.create_table(FAILURES_TABLE, schema=FAILURE_SCHEMA, exist_ok=True)
        return self._table

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
