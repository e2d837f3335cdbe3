"""LanceDB, the low-level part shared by every table of the store: connecting to any LanceDB URI with
storage options, telling a missing local database (reads must not create one), quoting filter literals."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from tagging.errors import CatalogError

STORAGE_OPTIONS_ENV = "TAGGING_STORAGE_OPTIONS"


def storage_options(given: dict[str, str] | None = None) -> dict[str, str] | None:
    """Object-store options for the catalog URI: ``given``, else ``$TAGGING_STORAGE_OPTIONS`` (a JSON object).

    Passed to ``lancedb.connect`` as they are (e.g. ``{"region": "eu-west-1", "endpoint": ...}``);
    the environment form reaches decode processes and Ray workers too.

    Raises:
        CatalogError: The environment variable is not a JSON object of strings.
    """
    if given is not None:
        return given
    raw = os.environ.get(STORAGE_OPTIONS_ENV)
    if not raw:
        return None
    try:
        opts = json.loads(raw)
        if isinstance(opts, dict):
            return {str(k): str(v) for k, v in opts.items()}
    except ValueError:
        pass
    raise CatalogError(STORAGE_OPTIONS_ENV, "must be a JSON object of storage options")


def connect(uri: str | Path, options: dict[str, str] | None = None) -> Any:
    """``lancedb.connect(uri)`` with the storage options (see :func:`storage_options`).

    A local directory is created: call it only to write, or after :func:`is_missing`.

    Raises:
        CatalogError: The database cannot be opened.
    """
    import lancedb

    try:
        return lancedb.connect(str(uri), storage_options=storage_options(options))
    except CatalogError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CatalogError(str(uri), f"cannot open LanceDB: {exc}") from exc


def is_missing(uri: str | Path) -> bool:
    """Whether ``uri`` is a local directory that does not exist (reading it must not create it)."""
    uri = str(uri)
    if "://" in uri and not uri.startswith("file://"):
        return False
    return not Path(uri.removeprefix("file://")).exists()


def table_exists(db: Any, name: str) -> bool:
    """Whether the LanceDB connection ``db`` has a table ``name`` (across lancedb versions)."""
    names = db.list_tables() if hasattr(db, "list_tables") else db.table_names()
    return name in list(getattr(names, "tables", names))


def sql_string(value: str) -> str:
    """Quote a string literal for a LanceDB filter (ids are validated first, quotes doubled anyway)."""
    return "'" + str(value).replace("'", "''") + "'"


class LazyTable:
    """One table of a LanceDB database, connected and created on first use (constructing one opens nothing).

    Subclasses set ``NAME`` and ``SCHEMA``; reads that must not create anything ask :meth:`exists` first.

    Args:
        uri: The LanceDB URI (the catalog's directory, ``s3://``, ...).
        storage_options: Object-store options (default: ``$TAGGING_STORAGE_OPTIONS``, see :func:`storage_options`).
    """

    NAME: ClassVar[str]
    SCHEMA: ClassVar[pa.Schema]

    def __init__(self, uri: str | Path, storage_options: dict[str, str] | None = None) -> None:
        self.uri = str(uri)
        self.storage_options = storage_options
        self._db: Any = None
        self._table: Any = None

    @property
    def db(self) -> Any:
        """The LanceDB connection (:func:`connect`), opened on first use.

        Raises:
            CatalogError: The database cannot be opened.
        """
        if self._db is None:
            self._db = connect(self.uri, self.storage_options)
        return self._db

    @property
    def table(self) -> Any:
        """The table, created on first use."""
        if self._table is None:
            self._table = self.db.create_table(self.NAME, schema=self.SCHEMA, exist_ok=True)
        return self._table

    def exists(self) -> bool:
        """Whether the table is there, without creating the database or the table."""
        if self._table is not None:
            return True
        return not (self._db is None and is_missing(self.uri)) and table_exists(self.db, self.NAME)
