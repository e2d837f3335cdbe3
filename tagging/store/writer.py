"""Micro-batched, process-safe catalog writes and scheduled maintenance.

Every LanceDB commit creates a table version and (usually) a data fragment, so one
commit per upload fragments the table quickly. :class:`BatchWriter` collects rows
from any number of threads and flushes them as one ``Catalog.upsert`` every
``max_rows`` rows or ``max_delay_ms`` milliseconds, whichever comes first; each
caller gets a future that resolves once its row is committed.

Writers in different processes are serialised with an advisory file lock beside the
table (:func:`write_lock`). Lance retries conflicting ``merge_insert`` commits on its
own and we measured no duplicates without the lock, but with 16 writers the retries
cost more than waiting for the lock and can run out; the lock makes the outcome
independent of retry budgets. Maintenance (:func:`maintain`) takes the same lock, so
compaction and version cleanup never race a writer of ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from tagging.errors import CatalogError
from tagging.store.catalog import Catalog

logger = logging.getLogger(__name__)


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


@contextlib.contextmanager
def write_lock(uri: str | Path, name: str = "videos") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<uri>/<name>.write.lock`` (no-op for remote URIs).

    ``flock`` locks belong to the open file, so threads of one process exclude each
    other as well as other processes.
    """
    uri = str(uri)
    if not _is_local(uri):
        yield
        return
    d = Path(uri.removeprefix("file://"))
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{name}.write.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def locked_upsert(catalog: Catalog, rows: list[dict[str, Any]]) -> int:
    """``catalog.upsert(rows)`` under the table's write lock.

    Raises:
        CatalogError: The write failed.
    """
    with write_lock(catalog.uri, catalog.table_name):
        catalog.table.checkout_latest()
        return catalog.upsert(rows)


@dataclass
class WriterConfig:
    """Micro-batching settings.

    Attributes:
        max_rows: Flush when this many rows are waiting.
        max_delay_ms: Flush when the oldest waiting row is this old.
    """

    max_rows: int = 64
    max_delay_ms: float = 200.0


class BatchWriter:
    """A background thread that batches rows into few catalog commits.

    Args:
        catalog: Target catalog.
        config: Batching settings.
    """

    def __init__(self, catalog: Catalog, config: WriterConfig | None = None) -> None:
        self.catalog = catalog
        self.config = config or WriterConfig()
        self._pending: list[tuple[dict[str, Any], Future]] = []
        self._oldest = 0.0
        self._cond = threading.Condition()
        self._closed = False
        self._flush_requested = False
        self.commits = 0
        self.rows_written = 0
        self._thread = threading.Thread(target=self._run, name="tagging-writer", daemon=True)
        self._thread.start()

    def submit(self, row: dict[str, Any]) -> Future:
        """Queue one row; the future resolves to its ``video_id`` once committed.

        Raises:
            CatalogError: The writer is closed.
        """
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise CatalogError(self.catalog.uri, "writer is closed")
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append((row, fut))
            if len(self._pending) >= self.config.max_rows:
                self._cond.notify_all()
            elif len(self._pending) == 1:
                self._cond.notify_all()  # start the delay clock
        return fut

    def write(self, row: dict[str, Any], timeout: float | None = None) -> str:
        """Queue one row and wait until it is committed.

        Raises:
            CatalogError: The batch holding the row failed to commit.
        """
        return self.submit(row).result(timeout)

    def flush(self) -> None:
        """Commit everything queued so far and wait for it (errors stay on the rows' futures)."""
        with self._cond:
            futs = [f for _, f in self._pending]
            self._flush_requested = True
            self._cond.notify_all()
        for f in futs:
            f.exception()

    def close(self) -> None:
        """Flush and stop the thread (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _due(self) -> bool:
        if not self._pending:
            return False
        if self._closed or self._flush_requested or len(self._pending) >= self.config.max_rows:
            return True
        return (time.monotonic() - self._oldest) * 1000 >= self.config.max_delay_ms

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    if self._closed and not self._pending:
                        return
                    wait = None
                    if self._pending:
                        wait = max(0.0, self.config.max_delay_ms / 1000 - (time.monotonic() - self._oldest))
                    self._cond.wait(wait)
                batch = self._pending[: self.config.max_rows]
                self._pending = self._pending[self.config.max_rows:]
                self._oldest = time.monotonic()
                if not self._pending:
                    self._flush_requested = False
            self._commit(batch)

    def _commit(self, batch: list[tuple[dict[str, Any], Future]]) -> None:
        try:
            locked_upsert(self.catalog, [r for r, _ in batch])
        except Exception as exc:  # noqa: BLE001 - every waiter gets an answer
            if len(batch) > 1:  # one bad row must not fail its neighbours: retry them one by one
                logger.warning("commit of %d rows failed (%s); retrying row by row", len(batch), exc)
                for item in batch:
                    self._commit([item])
                return
            logger.error("commit of %s failed: %s", batch[0][0].get("video_id"), exc)
            err = exc if isinstance(exc, CatalogError) else CatalogError(self.catalog.uri, str(exc))
            batch[0][1].set_exception(err)
            return
        self.commits += 1
        self.rows_written += len(batch)
        for r, f in batch:
            f.set_result(r["video_id"])


def maintain(catalog: Catalog, older_than: timedelta = timedelta(minutes=10)) -> dict[str, Any]:
    """Compact small fragments and drop versions older than ``older_than``.

    Runs under the table's write lock, so writers using :func:`locked_upsert` (the
    hook, the server and the backfill) wait instead of conflicting; readers holding
    a version younger than ``older_than`` keep working.

    Returns:
        Versions and fragment counts before/after.

    Raises:
        CatalogError: Optimisation failed.
    """
    if catalog.count() == 0:
        return {"skipped": "empty table"}
    table = catalog.table
    with write_lock(catalog.uri, catalog.table_name):
        table.checkout_latest()
        before = {"version": int(table.version), "fragments": _fragments(table)}
        t0 = time.perf_counter()
        try:
            table.optimize(cleanup_older_than=older_than)
        except Exception as exc:
            raise CatalogError(catalog.uri, f"optimize failed: {exc}") from exc
        table.checkout_latest()
        after = {"version": int(table.version), "fragments": _fragments(table),
                 "versions_kept": len(table.list_versions())}
    logger.info("maintenance of %s: %s -> %s", catalog.uri, before, after)
    return {"before": before, "after": after, "seconds": round(time.perf_counter() - t0, 3)}


def _fragments(table: Any) -> int:
    try:
        stats = table.stats()
        frag = stats["fragment_stats"] if isinstance(stats, dict) else stats.fragment_stats
        return int(frag["num_fragments"] if isinstance(frag, dict) else frag.num_fragments)
    except Exception:  # noqa: BLE001 - statistics are informative only
        return -1


class Maintainer:
    """Run :func:`maintain` every ``interval_s`` seconds on a daemon thread.

    Args:
        catalog: The catalog to maintain.
        interval_s: Seconds between runs.
        older_than: Versions older than this are removed.
    """

    def __init__(self, catalog: Catalog, interval_s: float = 600.0, older_than: timedelta = timedelta(minutes=10)) -> None:
        self.catalog, self.interval_s, self.older_than = catalog, float(interval_s), older_than
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tagging-maintain", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                maintain(self.catalog, self.older_than)
                self.runs += 1
            except Exception as exc:  # noqa: BLE001 - maintenance must never take the service down
                logger.warning("maintenance failed: %s", exc)

    def stop(self) -> None:
        """Stop the schedule (a run in progress finishes)."""
        self._stop.set()
        self._thread.join()
