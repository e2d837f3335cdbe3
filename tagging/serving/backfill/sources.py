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
from pathlib import Path
from typing import Any

from tagging.errors import SourceError
from tagging.inputs import default_video_id, expand_paths, load_captions
from tagging.serving.backfill.fetch import is_remote, url_video_id
from tagging.store.catalog import Catalog

logger = logging.getLogger(__name__)


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


def catalog_state(catalog: Catalog) -> dict[str, tuple[dict[str, str], str | None, bool]]:
    """``video_id -> (extractor ids, cf_model_version, stores tag inputs)`` of every stored row.

    The last is True when the row has ``tag_inputs_json`` (rows made before that column have not):
    then a text-extractor change can be refreshed without decoding (:mod:`tagging.serving.backfill.refresh`).
    """
    if catalog.count() == 0:
        return {}
    table = catalog.table
    table.checkout_latest()
    cols = {"video_id": "video_id", "extractors_json": "extractors_json", "cf_model_version": "cf_model_version"}
    if "tag_inputs_json" in table.schema.names:
        cols["inputs"] = "tag_inputs_json IS NOT NULL"
    data = table.search().select(cols).limit(catalog.count()).to_arrow().to_pylist()
    return {r["video_id"]: (json.loads(r["extractors_json"] or "{}"), r["cf_model_version"], bool(r.get("inputs")))
            for r in data}
