"""Backfill a whole catalog: resumable, idempotent, parallel decode, optional Ray.

Plan first, then work:

* **done** - the row exists with the current extractor ids and (when a CB2CF model is
  configured) the current ``cf_model_version``: skipped;
* **cf** - the row exists with the current extractor ids but another CB2CF version:
  only ``cf_vector`` is recomputed from the stored per-modality vectors (the feature
  cache), no decode;
* **text** - the row exists, only the text extractor id differs (frames and audio extractors,
  taxonomy and tag head unchanged) and the row stores its tags' visual/audio inputs: the text
  vector, tags, fused and CF vectors are recomputed from the stored caption, transcript and
  OCR text (:mod:`tagging.serving.backfill.refresh`), no decode, no Whisper, no OCR; rows made
  before those inputs were stored get the full path;
* **failed** - the uri is in the ``failures`` table: skipped unless ``retry_failures``;
* **full** - everything else: decode (isolated child processes) -> models -> row.

Rows are written in micro-batches by upsert on ``video_id``, so a run killed at any
point and started again with the same arguments does only what is not stored yet,
and ends with the same table as an uninterrupted run (same ids, no duplicates, no gaps).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tagging import coldstart
from tagging.errors import CatalogError, TaggingError
from tagging.serving.backfill.refresh import refresh_text, text_only_change
from tagging.serving.backfill.sources import Item, catalog_state, read_source, resolve_id
from tagging.serving.backfill.work import Outcome, local_outcomes
from tagging.serving.isolation import DEFAULT_DECODE_MEMORY_MB, DEFAULT_DECODE_TIMEOUT_S
from tagging.store.catalog import DEFAULT_DB, Catalog
from tagging.store.failures import FailureLog
from tagging.store.writer import BatchWriter, WriterConfig

if TYPE_CHECKING:
    from tagging.pipeline import Analyzer, PipelineConfig

logger = logging.getLogger(__name__)


@dataclass
class BackfillConfig:
    """Backfill settings.

    Attributes:
        db: The catalog: a LanceDB directory or URI (``s3://``, ``gs://``, ...).
        storage_options: Object-store options for ``db`` (default: ``$TAGGING_STORAGE_OPTIONS``).
        table: Catalog table.
        pipeline: A ``PipelineConfig`` (default when None).
        engine: ``"local"`` (decode processes + in-process models) or ``"ray"``.
        workers: Decode processes (local) or Ray actors (ray).
        decode_timeout_s: Wall-clock limit of one decode.
        decode_memory_mb: Address-space limit of a decode process.
        batch_rows: Rows per catalog commit.
        retry_failures: Process uris listed in the failures table again.
        source_table: Table to read when the source is a LanceDB directory.
        show_progress: tqdm progress bar (rate and ETA).
        ray_address: Ray cluster address (None: a local instance).
        ray_batch_size: Items per ``map_batches`` call.
        ray_write: Who writes the rows with ``engine="ray"``: ``"driver"`` (actors return rows) or
            ``"workers"`` (each actor commits its batch into the shared catalog URI).
        batch_videos: Videos whose model work runs as one batch (local engine); 1 is the
            one-video-at-a-time path (decode in workers, every model in the parent).
    """

    db: str = DEFAULT_DB
    storage_options: dict[str, str] | None = None
    table: str = "videos"
    pipeline: PipelineConfig | None = None
    engine: str = "local"
    workers: int = 1
    decode_timeout_s: float = DEFAULT_DECODE_TIMEOUT_S
    decode_memory_mb: int = DEFAULT_DECODE_MEMORY_MB
    batch_rows: int = 32
    retry_failures: bool = False
    source_table: str = "videos"
    show_progress: bool = False
    ray_address: str | None = None
    ray_batch_size: int = 4
    ray_write: str = "driver"
    batch_videos: int = 8


@dataclass
class BackfillReport:
    """What a backfill run did."""

    total: int = 0
    done: int = 0
    skipped_failed: int = 0
    processed: int = 0
    cf_updated: int = 0
    text_refreshed: int = 0
    failed: int = 0
    failures: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for humans."""
        rate = 60.0 * self.processed / self.seconds if self.seconds > 0 else 0.0
        by = ", ".join(f"{k}: {v}" for k, v in sorted(self.failures.items()))
        return (f"{self.total} items: {self.processed} ingested, {self.cf_updated} CF-only updates, "
                f"{self.text_refreshed} text-only refreshes, "
                f"{self.done} already done, {self.skipped_failed} known failures skipped, {self.failed} failed"
                f"{f' ({by})' if by else ''} in {self.seconds:.1f} s ({rate:.1f} videos/min)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {k: (dict(v) if isinstance(v, Counter) else v) for k, v in self.__dict__.items()}


def plan(items: list[Item], catalog: Catalog, failures: FailureLog, extractors: dict[str, str],
         cf_version: str | None, retry_failures: bool, text_refresh: bool = True,
         ) -> tuple[list[Item], list[Item], list[Item], BackfillReport]:
    """Split items into (full, cf-only, text-only) work; count what is done or skipped.

    Items whose id cannot be derived (unreadable file) go to full work and fail there. With
    ``text_refresh`` False (an analyser that is not a ``Pipeline``) text-only work is full work.
    """
    report = BackfillReport(total=len(items))
    state = catalog_state(catalog)
    full: list[Item] = []
    cf_only: list[Item] = []
    text_only: list[Item] = []
    for it in items:
        try:
            vid = resolve_id(it)
        except TaggingError:
            vid = None
        stored = state.get(vid) if vid else None
        if stored is not None and stored[0] == extractors:
            if cf_version is None or stored[1] == cf_version:
                report.done += 1
            else:
                cf_only.append(it)
        elif text_refresh and stored is not None and stored[2] and text_only_change(stored[0], extractors):
            text_only.append(it)
        elif it.uri in failures.known and not retry_failures:
            report.skipped_failed += 1
        else:
            full.append(it)
    return full, cf_only, text_only, report


def run_backfill(source: str, config: BackfillConfig | None = None, pipeline: Analyzer | None = None) -> BackfillReport:
    """Backfill ``source`` into the catalog.

    Args:
        source: Directory, CSV/JSONL manifest, or LanceDB directory.
        config: Settings.
        pipeline: An already loaded ``Pipeline`` to reuse (else one is built from ``config.pipeline``).

    Returns:
        The run's report (also logged).

    Raises:
        SourceError: The source cannot be read.
        CatalogError: The catalog cannot be opened or written.
    """
    from tagging.pipeline import Pipeline, PipelineConfig

    cfg = config or BackfillConfig()
    t0 = time.perf_counter()
    pipeline = pipeline or Pipeline(cfg.pipeline or PipelineConfig())
    items = read_source(source, cfg.source_table)
    catalog = Catalog(cfg.db, cfg.table, dims=pipeline.dims(), storage_options=cfg.storage_options)
    catalog.table  # noqa: B018 - create before workers start
    failures = FailureLog(cfg.db, cfg.storage_options)
    extractors = getattr(pipeline, "versions", None) or {m: e.extractor_id for m, e in pipeline.extractors.items()}
    cf_version = pipeline.cb2cf.version if pipeline.cb2cf is not None else None
    full, cf_only, text_only, report = plan(items, catalog, failures, extractors, cf_version, cfg.retry_failures,
                                            isinstance(pipeline, Pipeline))
    logger.info("backfill plan: %d full, %d CF-only, %d text-only, %d done, %d known failures",
                len(full), len(cf_only), len(text_only), report.done, report.skipped_failed)
    bar = _progress(len(full) + len(cf_only) + len(text_only), cfg.show_progress)
    written: list[tuple[Item, Future]] = []
    with BatchWriter(catalog, WriterConfig(max_rows=cfg.batch_rows, max_delay_ms=5000)) as writer:
        full += _update_stored(catalog, pipeline, cf_only, text_only, writer, bar, report)
        outcomes = _ray_outcomes(full, cfg, pipeline) if cfg.engine == "ray" else _local_outcomes(full, cfg, pipeline)
        for item, row, err in outcomes:
            if err is not None:
                _record_failure(report, failures, item, err)
            elif row is None:  # a Ray worker committed it (ray_write="workers")
                written.append((item, _committed()))
            else:
                written.append((item, writer.submit(row)))
            bar.update(1)
        writer.flush()
    bar.close()
    succeeded = []
    for item, fut in written:  # a row counts only once its batch is committed
        err = fut.exception()
        if err is None:
            report.processed += 1
            succeeded.append(item.uri)
        else:
            _record_failure(report, failures, item, err if isinstance(err, TaggingError) else CatalogError(cfg.db, str(err)))
    failures.clear(succeeded)
    report.seconds = time.perf_counter() - t0
    logger.info("backfill: %s", report.summary())
    return report


def _update_stored(catalog: Catalog, pipeline: Any, cf_only: list[Item], text_only: list[Item], writer: BatchWriter,
                   bar: Any, report: BackfillReport) -> list[Item]:
    """CF-only and text-only updates of stored rows (no decode); return the text items that need full work."""
    if cf_only:
        report.cf_updated = coldstart.update_cf(catalog, pipeline.cb2cf, [it.video_id for it in cf_only], writer, bar)
    if not text_only:
        return []
    report.text_refreshed, redo = refresh_text(catalog, pipeline, [it.video_id for it in text_only], writer, bar)
    return [it for it in text_only if it.video_id in redo]


def _committed() -> Future:
    fut: Future = Future()
    fut.set_result(1)
    return fut


def _record_failure(report: BackfillReport, failures: FailureLog, item: Item, err: TaggingError) -> None:
    report.failed += 1
    report.failures[err.error_class] += 1
    failures.record(item.uri, item.video_id, err.error_class, err.reason)
    logger.info("failed: %s", err)


def _progress(total: int, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="backfill", unit="video", disable=not show, smoothing=0.1)


def _local_outcomes(items: list[Item], cfg: BackfillConfig, pipeline: Analyzer) -> Iterator[Outcome]:
    from tagging.pipeline import Pipeline
    from tagging.serving.backfill.batch import batched_outcomes

    if cfg.batch_videos > 1 and isinstance(pipeline, Pipeline):
        yield from batched_outcomes(items, cfg, pipeline)
    else:  # one video at a time (also any other Analyzer)
        yield from local_outcomes(items, cfg, pipeline)


def _ray_outcomes(items: list[Item], cfg: BackfillConfig, pipeline: Analyzer) -> Iterator[Outcome]:
    from tagging.serving.backfill.ray_engine import ray_outcomes

    yield from ray_outcomes(items, cfg, pipeline.config)
