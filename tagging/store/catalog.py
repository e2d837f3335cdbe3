"""The LanceDB catalog: one row per video, keyed by ``video_id``.

Embedded by default (a local directory). The schema is a pydantic ``LanceModel``
built for the vector sizes of the configured extractors; every write is an
idempotent upsert (``merge_insert`` on ``video_id``, batches deduplicated by key
first, the table's unenforced primary key set), so re-ingesting a video replaces
its row instead of adding one.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from tagging.errors import CatalogError, InvalidVideoId
from tagging.store.lance import connect, is_missing, sql_string, table_exists

logger = logging.getLogger(__name__)

VIDEO_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
DEFAULT_DB = "tagging.lancedb"



def default_db() -> str:
    """The catalog: ``$TAGGING_DB`` or ``tagging.lancedb``; any LanceDB URI (a directory, ``s3://``, ``gs://``, ...)."""
    return os.environ.get("TAGGING_DB") or DEFAULT_DB


DEFAULT_TABLE = "videos"
DEFAULT_CF_DIM = 64
# feature vectors (content side) and all vector columns of a row
FEATURE_VECTORS = ("frames_vector", "audio_vector", "text_vector", "fused_vector")
VECTOR_COLUMNS = (*FEATURE_VECTORS, "cf_vector")
# small JPEGs stored at ingest for the web page (binary: never part of a JSON answer)
IMAGE_COLUMNS = ("thumbnail", "frame_thumbs")


def validate_video_id(video_id: str) -> str:
    """Return ``video_id`` if it matches the strict id pattern.

    Ids are 1-128 characters of letters, digits and ``_ . : -``, starting with a
    letter or digit: no slashes (no path traversal), no quotes or spaces (nothing
    that could change a filter expression).

    Raises:
        InvalidVideoId: The id does not match.
    """
    if not isinstance(video_id, str) or not VIDEO_ID_PATTERN.match(video_id) or ".." in video_id:
        raise InvalidVideoId(repr(video_id)[:140], f"video ids must match {VIDEO_ID_PATTERN.pattern} and contain no '..'")
    return video_id


def id_filter(video_ids: list[str]) -> str:
    """Build ``video_id IN (...)`` from validated ids, never splicing raw user text."""
    return "video_id IN (" + ", ".join(sql_string(validate_video_id(v)) for v in video_ids) + ")"


@dataclass(frozen=True)
class CatalogDims:
    """Vector sizes the table is created with."""

    frames: int = 1280
    audio: int = 193
    text: int = 384
    cf: int | None = None  # None: 64 for a new table, the table's own for an existing one

    def matches(self, table_dims: CatalogDims) -> bool:
        """True when these sizes fit a table of ``table_dims`` (a None CF size fits any)."""
        return (self.frames, self.audio, self.text) == (table_dims.frames, table_dims.audio, table_dims.text) and (
            self.cf is None or self.cf == table_dims.cf
        )

    @property
    def fused(self) -> int:
        """Length of the fused vector (the per-modality vectors concatenated)."""
        return self.frames + self.audio + self.text


@lru_cache(maxsize=8)
def row_model(dims: CatalogDims) -> type:
    """Build the pydantic LanceModel of a catalog row for ``dims``."""
    from lancedb.pydantic import LanceModel, Vector
    from pydantic import create_model

    fields: dict[str, Any] = {
        "video_id": (str, ...),
        "source_uri": (str, ...),
        "caption": (str, ""),
        "metadata_json": (str, "{}"),
        "container": (str, ""),
        "size_bytes": (int, 0),
        "duration_s": (float, 0.0),
        "width": (int, 0),
        "height": (int, 0),
        "fps": (float, 0.0),
        "rotation": (int, 0),
        "has_video": (bool, False),
        "has_audio": (bool, False),
        "probe_json": (str, "{}"),
        "frames_present": (bool, False),
        "audio_present": (bool, False),
        "text_present": (bool, False),
        "frames_vector": (Optional[Vector(dims.frames)], None),
        "audio_vector": (Optional[Vector(dims.audio)], None),
        "text_vector": (Optional[Vector(dims.text)], None),
        "fused_vector": (Vector(dims.fused), ...),
        "tags": (list[str], ...),
        "tag_scores": (list[float], ...),
        "tags_json": (str, "[]"),
        "transcript": (Optional[str], None),
        "transcript_json": (Optional[str], None),
        "ocr_text": (Optional[str], None),
        "ocr_json": (Optional[str], None),
        "review_json": (Optional[str], None),
        "review_passed": (Optional[bool], None),
        "cf_vector": (Optional[Vector(dims.cf or DEFAULT_CF_DIM)], None),
        "cf_model_version": (Optional[str], None),
        "extractors_json": (str, "{}"),
        "taxonomy_id": (str, ""),
        "timings_json": (str, "{}"),
        "ingested_at": (datetime, ...),
        # added later: tables made before lack them, ``Catalog.upsert`` adds them (null for old rows)
        "thumbnail": (Optional[bytes], None),
        "frame_thumbs": (Optional[list[bytes]], None),
        "frame_times": (Optional[list[float]], None),
        "tag_inputs_json": (Optional[str], None),  # visual/audio tag scores (tagging.tags.replay)
    }
    return create_model("CatalogRow", __base__=LanceModel, **fields)


def _dims_of(schema: pa.Schema) -> CatalogDims:
    def size(name: str) -> int:
        return int(schema.field(name).type.list_size)

    return CatalogDims(frames=size("frames_vector"), audio=size("audio_vector"), text=size("text_vector"), cf=size("cf_vector"))


class Catalog:
    """A LanceDB table of videos.

    Args:
        uri: Database directory (created on first write; reads of a missing one create nothing) or any LanceDB
            URI (``s3://``, ``gs://``, ...).
        table: Table name.
        dims: Vector sizes for a new table; an existing table keeps its own and
            must agree when given.
        storage_options: Object-store options passed to LanceDB (default: ``$TAGGING_STORAGE_OPTIONS``).

    Raises:
        CatalogError: The database cannot be opened, or ``dims`` disagree with the table.
    """

    def __init__(self, uri: str | Path = DEFAULT_DB, table: str = DEFAULT_TABLE, dims: CatalogDims | None = None,
                 storage_options: dict[str, str] | None = None) -> None:
        self.uri = str(uri)
        self.table_name = table
        self.storage_options = storage_options
        self._db: Any = None
        self._table = None
        self.dims = dims
        if self._exists():
            self._table = self.db.open_table(table)
            actual = _dims_of(self._table.schema)
            if dims is not None and not dims.matches(actual):
                raise CatalogError(self.uri, f"table {table!r} has vector sizes {actual}, the extractors produce {dims}")
            self.dims = actual

    @property
    def db(self) -> Any:
        """The LanceDB connection, opened on first use (a local directory is created only then)."""
        if self._db is None:
            self._db = connect(self.uri, self.storage_options)
        return self._db

    def _exists(self) -> bool:
        return not (self._db is None and is_missing(self.uri)) and table_exists(self.db, self.table_name)

    @property
    def table(self) -> Any:
        """The LanceDB table, created with the primary key set on first use."""
        if self._table is None:
            dims = self.dims or CatalogDims()
            if dims.cf is None:
                dims = CatalogDims(dims.frames, dims.audio, dims.text, DEFAULT_CF_DIM)
            try:
                self._table = self.db.create_table(self.table_name, schema=row_model(dims), exist_ok=True)
                if not self._has_primary_key():
                    self._table.set_unenforced_primary_key("video_id")
            except Exception as exc:  # noqa: BLE001
                if self._exists():  # a concurrent writer created it first
                    self._table = self.db.open_table(self.table_name)
                else:
                    raise CatalogError(self.uri, f"cannot create table {self.table_name!r}: {exc}") from exc
            self.dims = _dims_of(self._table.schema)
        return self._table

    def _has_primary_key(self) -> bool:
        meta = self._table.schema.field("video_id").metadata or {}
        return any(b"primary" in k for k in meta)

    @property
    def version(self) -> int:
        """Current table version (0 when the table does not exist yet)."""
        return int(self._table.version) if self._table is not None else 0

    def count(self) -> int:
        """Number of rows."""
        return int(self.table.count_rows()) if self._table is not None or self._exists() else 0

    def upsert(self, rows: list[dict[str, Any]]) -> int:
        """Insert or replace rows by ``video_id`` in one LanceDB commit.

        Args:
            rows: Row dicts following the table schema. Within the batch the last
                row of each id wins.

        Returns:
            The number of distinct ids written.

        Raises:
            InvalidVideoId: A row has an invalid id (nothing is written).
            CatalogError: The write failed (nothing is written).
        """
        if not rows:
            return 0
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            latest[validate_video_id(row["video_id"])] = row
        table = self.table
        self._check_vectors(latest.values())
        self._add_new_columns()
        model = row_model(self.dims)
        try:
            full = [model(**r).model_dump() for r in latest.values()]  # fills defaults, checks types
        except Exception as exc:  # noqa: BLE001 - pydantic ValidationError
            raise CatalogError(next(iter(latest)), f"row does not fit the catalog schema: {exc}") from exc
        try:
            data = pa.Table.from_pylist(full, schema=table.schema)
            # Sizes were checked above; "null" only lets LanceDB accept all-null optional columns.
            (
                table.merge_insert("video_id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(data, on_bad_vectors="null")
            )
        except Exception as exc:  # noqa: BLE001
            raise CatalogError(self.uri, f"upsert of {len(latest)} rows failed: {exc}") from exc
        return len(latest)

    def complete(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` with every column of the table, defaults filled in (the shape :meth:`get` returns).

        Raises:
            CatalogError: The row does not fit the schema.
        """
        try:
            return row_model(self.table and self.dims)(**row).model_dump()
        except Exception as exc:  # noqa: BLE001 - pydantic ValidationError
            raise CatalogError(str(row.get("video_id")), f"row does not fit the catalog schema: {exc}") from exc

    def _add_new_columns(self) -> None:
        """Add the schema's nullable columns an older table lacks (its rows get nulls)."""
        have = set(self.table.schema.names)
        new = [f for f in row_model(self.dims).to_arrow_schema() if f.name not in have and f.nullable]
        if new:
            try:
                self.table.add_columns(pa.schema(new))
            except Exception as exc:  # noqa: BLE001 - a concurrent writer may have added them first
                self.table.checkout_latest()
                if not {f.name for f in new} <= set(self.table.schema.names):
                    raise CatalogError(self.uri, f"cannot add columns {[f.name for f in new]}: {exc}") from exc
            logger.info("catalog %s: added columns %s", self.uri, [f.name for f in new])

    def _check_vectors(self, rows: Any) -> None:
        sizes = {"frames_vector": self.dims.frames, "audio_vector": self.dims.audio, "text_vector": self.dims.text,
                 "fused_vector": self.dims.fused, "cf_vector": self.dims.cf}
        for row in rows:
            for col, size in sizes.items():
                v = row.get(col)
                if v is not None and len(v) != size:
                    raise CatalogError(row["video_id"], f"{col} has {len(v)} values, the table expects {size}")
                if v is not None and not np.all(np.isfinite(v)):
                    raise CatalogError(row["video_id"], f"{col} has NaN or infinite values")
            if row.get("fused_vector") is None:
                raise CatalogError(row["video_id"], "fused_vector is required")

    def get(self, video_id: str) -> dict[str, Any] | None:
        """Return the row of ``video_id`` or None.

        Raises:
            InvalidVideoId: The id is malformed.
        """
        rows = self.get_many([video_id])
        return rows[0] if rows else None

    def get_many(self, video_ids: list[str]) -> list[dict[str, Any]]:
        """Return the rows of ``video_ids`` that exist (in table order)."""
        if not video_ids or (self._table is None and not self._exists()):
            return []
        where = id_filter(video_ids)
        return self.table.search().where(where).limit(len(video_ids) + 1).to_list()

    def columns(self, names: list[str]) -> list[dict[str, Any]]:
        """Every row's values of ``names`` only (vector columns are not read unless named)."""
        if self._table is None and not self._exists():
            return []
        n = self.count()
        return self.table.search().select(names).limit(n).to_arrow().to_pylist() if n else []

    def ids(self) -> set[str]:
        """All stored video ids."""
        if self._table is None and not self._exists():
            return set()
        return {r["video_id"] for r in self.columns(["video_id"])}

    def search(self, vector: np.ndarray, column: str = "fused_vector", k: int = 10, where: str | None = None,
               metric: str = "cosine") -> list[dict[str, Any]]:
        """Nearest rows to ``vector`` in ``column``.

        Args:
            vector: Query vector.
            column: One of the vector columns.
            k: Number of results.
            where: Optional filter; build it with :func:`id_filter` / :func:`sql_string`, never from raw user text.
            metric: ``"cosine"``, ``"dot"`` (CF scores) or ``"l2"``.

        Raises:
            ValueError: ``column`` is not a vector column.
        """
        if column not in VECTOR_COLUMNS:
            raise ValueError(f"column must be one of {VECTOR_COLUMNS}")
        query = self.table.search(np.asarray(vector, np.float32), vector_column_name=column).metric(metric).limit(k)
        if where:
            query = query.where(where, prefilter=True)
        return query.to_list()


JSON_COLUMNS = ("metadata_json", "probe_json", "tags_json", "transcript_json", "ocr_json", "review_json",
                "extractors_json", "timings_json", "tag_inputs_json")
"""Columns stored as JSON text; :func:`jsonable_row` returns them decoded."""


def jsonable_row(row: dict[str, Any], vectors: bool = True) -> dict[str, Any]:
    """A catalog row as plain JSON types: one shape for every answer.

    The ``*_json`` columns (:data:`JSON_COLUMNS`) come back as the objects they hold, not as
    escaped strings; feature vectors and the stored tag inputs (``tag_inputs_json``, what a
    text-only refresh replays) are dropped unless ``vectors`` (``cf_vector`` stays).
    """
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k.startswith("_") or k in IMAGE_COLUMNS or (not vectors and k in (*FEATURE_VECTORS, "tag_inputs_json")):
            continue
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, np.generic):
            v = v.item()
        elif k in JSON_COLUMNS and isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                logger.warning("%s: column %s holds no valid JSON; returned as text", row.get("video_id"), k)
        out[k] = v
    return out
