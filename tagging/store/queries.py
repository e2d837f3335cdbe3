"""Catalog operations people expect: list with filters, similar videos, take-down, export.

Filters are built from validated values with quoted literals (:func:`~tagging.store.lance.sql_string`);
no user text is spliced into a LanceDB filter.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tagging.errors import CatalogError, MediaNotFound, TaggingError
from tagging.store.catalog import Catalog, jsonable_row, validate_video_id
from tagging.store.exposure import ExposureStore
from tagging.store.interactions import InteractionStore
from tagging.store.lance import sql_string
from tagging.store.writer import write_lock

logger = logging.getLogger(__name__)

TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
LIST_COLUMNS = ["video_id", "source_uri", "caption", "duration_s", "width", "height", "tags", "tag_scores",
                "review_passed", "cf_model_version", "ingested_at"]
"""What a listing returns per video (no vectors: a page of the catalog stays small)."""
EXPORT_COLUMNS = ["video_id", "source_uri", "caption", "duration_s", "tags", "tag_scores", "tags_json", "review_passed",
                  "review_json", "cf_vector", "cf_model_version", "ingested_at"]
"""What ``tagging export`` writes: ids, tags with scores, review and the CF placement."""
Review = Literal["passed", "failed"]
Space = Literal["content", "cf"]


@dataclass
class Page:
    """One page of a listing: ``items`` are ``offset``.. of ``total`` matching videos, newest first."""

    total: int
    offset: int
    limit: int
    items: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the ``GET /videos`` answer)."""
        return {"total": self.total, "offset": self.offset, "limit": self.limit, "items": self.items}


def list_filter(tag: str | None = None, review: Review | None = None) -> str | None:
    """The LanceDB filter of a listing.

    Raises:
        ValueError: ``tag`` is not a plausible taxonomy id, or ``review`` is not passed/failed.
    """
    parts = []
    if tag is not None:
        if not TAG_PATTERN.match(tag):
            raise ValueError(f"tag must match {TAG_PATTERN.pattern}")
        parts.append(f"array_has(tags, {sql_string(tag)})")
    if review is not None:
        if review not in ("passed", "failed"):
            raise ValueError("review must be 'passed' or 'failed'")
        parts.append(f"review_passed = {'true' if review == 'passed' else 'false'}")
    return " AND ".join(parts) or None


def list_videos(catalog: Catalog, tag: str | None = None, review: Review | None = None, limit: int = 50,
                offset: int = 0, columns: list[str] | None = None) -> Page:
    """Videos matching ``tag`` and ``review``, newest first, ``limit`` from ``offset``.

    Args:
        catalog: The catalog (a missing one lists nothing and is not created).
        tag: Only videos carrying this tag.
        review: ``"passed"`` or ``"failed"``: only videos whose review gate says so.
        limit: Page size.
        offset: Videos to skip.
        columns: Columns to return (default :data:`LIST_COLUMNS`).

    Raises:
        ValueError: A bad filter value, or a negative ``limit`` / ``offset``.
        CatalogError: The catalog cannot be read.
    """
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must be >= 0")
    where = list_filter(tag, review)
    n = catalog.count()
    if n == 0:
        return Page(0, offset, limit, [])
    cols = [c for c in (columns or LIST_COLUMNS) if c in catalog.table.schema.names]
    try:
        query = catalog.table.search().select(cols + (["ingested_at"] if "ingested_at" not in cols else []))
        data = (query.where(where) if where else query).limit(n).to_arrow()
    except Exception as exc:  # noqa: BLE001
        raise CatalogError(catalog.uri, f"listing failed: {exc}") from exc
    data = data.sort_by([("ingested_at", "descending"), ("video_id", "ascending")])
    items = [jsonable_row({k: r[k] for k in cols}) for r in data.slice(offset, limit).to_pylist()]
    return Page(data.num_rows, offset, limit, items)


def similar_videos(catalog: Catalog, video_id: str, space: Space = "content", k: int = 10) -> list[dict[str, Any]]:
    """The ``k`` videos nearest to ``video_id`` (itself left out), by cosine similarity.

    ``space="content"`` searches ``fused_vector`` (what the video looks, sounds and reads like);
    ``space="cf"`` searches ``cf_vector`` (where CB2CF placed it among the audience's tastes).

    Returns:
        ``[{"video_id", "similarity", "tags", "caption"}]``, most similar first.

    Raises:
        InvalidVideoId: Malformed id.
        MediaNotFound: The video is not in the catalog.
        TaggingError: ``space="cf"`` and the video has no CF vector.
        ValueError: Unknown ``space`` or ``k`` < 1.
    """
    if space not in ("content", "cf"):
        raise ValueError("space must be 'content' or 'cf'")
    if k < 1:
        raise ValueError("k must be >= 1")
    row = catalog.get(video_id)
    if row is None:
        raise MediaNotFound(video_id, "video is not in the catalog")
    column = "fused_vector" if space == "content" else "cf_vector"
    if row.get(column) is None:
        raise TaggingError(video_id, "video has no CF vector (no CB2CF model at ingest)")
    where = f"video_id != {sql_string(video_id)}" + (" AND cf_vector IS NOT NULL" if space == "cf" else "")
    hits = catalog.search(np.asarray(row[column], np.float32), column, k=k, where=where, metric="cosine")
    return [{"video_id": h["video_id"], "similarity": round(1.0 - float(h["_distance"]), 6), "tags": list(h["tags"] or []),
             "caption": h.get("caption") or ""} for h in hits]


def delete_video(catalog: Catalog, video_id: str) -> bool:
    """Remove the row of ``video_id`` (under the table's write lock); whether it was there.

    Raises:
        InvalidVideoId: Malformed id.
        CatalogError: The delete failed.
    """
    validate_video_id(video_id)
    if catalog.count() == 0:
        return False
    with write_lock(catalog.uri, catalog.table_name):
        catalog.table.checkout_latest()
        if catalog.get(video_id) is None:
            return False
        try:
            catalog.table.delete(f"video_id = {sql_string(video_id)}")
        except Exception as exc:  # noqa: BLE001
            raise CatalogError(catalog.uri, f"cannot delete {video_id}: {exc}") from exc
    logger.info("deleted %s from %s", video_id, catalog.uri)
    return True


def takedown(catalog: Catalog, interactions: InteractionStore, video_id: str,
             exposure: ExposureStore | None = None) -> dict[str, Any]:
    """Take a video down: its catalog row, its interactions and its cold-start exposure state.

    Returns:
        ``{"video_id", "deleted": True, "interactions_deleted": n, "exposure_deleted": m}``.

    Raises:
        InvalidVideoId: Malformed id.
        MediaNotFound: Neither a row nor interactions of ``video_id`` exist.
        CatalogError: A delete failed.
    """
    n = interactions.delete(video_id)
    m = exposure.delete(video_id) if exposure is not None else 0
    if not delete_video(catalog, video_id) and n == 0 and m == 0:
        raise MediaNotFound(video_id, "video is not in the catalog")
    return {"video_id": video_id, "deleted": True, "interactions_deleted": n, "exposure_deleted": m}


def export_catalog(catalog: Catalog, out: str | Path, fmt: Literal["parquet", "csv"] = "parquet") -> int:
    """Write ids, tags with scores, review and CF placement of every video to ``out``; the row count.

    In CSV, list and JSON columns are written as JSON text (``tags``, ``tag_scores``, ``cf_vector``).

    Raises:
        ValueError: Unknown format.
        CatalogError: The catalog cannot be read or ``out`` cannot be written.
    """
    import pyarrow as pa

    if fmt not in ("parquet", "csv"):
        raise ValueError("format must be 'parquet' or 'csv'")
    n = catalog.count()
    cols = [c for c in EXPORT_COLUMNS if n and c in catalog.table.schema.names]
    data = catalog.table.search().select(cols).limit(n).to_arrow().sort_by("video_id") if n else pa.table(
        {c: pa.array([], pa.string()) for c in EXPORT_COLUMNS})
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(data, out)
        else:
            _write_csv(data, out)
    except OSError as exc:
        raise CatalogError(str(out), f"cannot write the export: {exc.strerror or exc}") from exc
    return data.num_rows


def _write_csv(data: Any, out: str | Path) -> None:
    import json

    import pyarrow as pa
    import pyarrow.csv as pcsv

    flat = {}
    for name in data.column_names:
        col = data.column(name)
        if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type):
            col = pa.array([None if v is None else json.dumps(v) for v in col.to_pylist()], pa.string())
        flat[name] = col
    pcsv.write_csv(pa.table(flat), out)
