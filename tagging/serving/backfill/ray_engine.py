"""The backfill on Ray Data, for catalogs that outgrow one machine.

``ray.data.from_items(items).map_batches(DecodeAndAnalyze, concurrency=N, ...)``: a
callable class, so each actor loads the models once (on a GPU when the cluster has
them: ``num_gpus=1`` per actor) and decodes in its own isolated child process (the
same :class:`~tagging.serving.isolation.DecodePool` as the local engine).

Who writes (``BackfillConfig.ray_write``):

* ``"driver"`` (default): actors return pickled rows or typed failures; the driver writes them in
  batches, exactly as the local engine does;
* ``"workers"``: each actor upserts its own batch into the shared catalog URI (one commit per
  batch, under the table's write lock on a local directory) and returns only the outcome, so the
  driver no longer carries every row (``bench/ray_driver.py`` measures where it would saturate).
  Resume and no-duplicate guarantees are the same: rows are upserts on ``video_id`` and a row counts
  only once its batch is committed; a failed commit fails every row of that batch (recorded in
  ``failures`` by the driver, redone on the next run).
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np

from tagging.errors import TaggingError

logger = logging.getLogger(__name__)


class DecodeAndAnalyze:
    """Ray actor body: decode in a child process, run the models, return rows.

    Args:
        pipeline_config: The driver's ``PipelineConfig``.
        decode_timeout_s: Wall-clock limit of one decode.
        decode_memory_mb: Address-space limit of the decode process.
        catalog: ``{"uri", "table", "storage_options"}`` when the actor writes its rows itself.
    """

    def __init__(self, pipeline_config: Any, decode_timeout_s: float, decode_memory_mb: int,
                 catalog: dict[str, Any] | None = None) -> None:
        from tagging.pipeline import Pipeline
        from tagging.serving.isolation import DecodePool, DecodeSettings
        from tagging.store.catalog import Catalog

        self.pipeline = Pipeline(pipeline_config)
        self.pipeline.load_models()
        self.pool = DecodePool(DecodeSettings.from_pipeline_config(pipeline_config), 1, decode_timeout_s, decode_memory_mb)
        self.catalog = Catalog(catalog["uri"], catalog["table"], storage_options=catalog["storage_options"]) \
            if catalog else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        """Process one batch of items (columns ``uri``, ``video_id``, ``caption_json``, ``metadata_json``)."""
        from tagging.serving.backfill.sources import Item
        from tagging.serving.backfill.work import analyze_item, decode_item

        keys, outs = [], []
        for uri, vid, cap, meta in zip(batch["uri"], batch["video_id"], batch["caption_json"], batch["metadata_json"]):
            item = Item(str(uri), str(vid) if vid else None, json.loads(cap), json.loads(meta))
            try:
                row = analyze_item(self.pipeline, decode_item(self.pool, item), item)
                out: tuple = ("ok", item.video_id, row)
            except TaggingError as exc:
                out = ("err", item.video_id, exc.error_class, exc.source, exc.reason)
            keys.append(str(uri))
            outs.append(out)
        if self.catalog is not None:
            outs = self._commit(outs)
        return {"uri": keys, "payload": [pickle.dumps(o) for o in outs]}

    def _commit(self, outs: list[tuple]) -> list[tuple]:
        """Upsert this batch's rows in one commit; answer ``("ok", id, None)`` or the commit's error per row."""
        from tagging.store.writer import locked_upsert

        rows = [o[2] for o in outs if o[0] == "ok"]
        try:
            locked_upsert(self.catalog, rows)
        except TaggingError as exc:
            return [("err", o[1], exc.error_class, exc.source, exc.reason) if o[0] == "ok" else o for o in outs]
        return [("ok", o[1], None) if o[0] == "ok" else o for o in outs]


def _ray() -> Any:
    """Import Ray or raise MissingDependency saying how to install it."""
    from tagging.extractors.base import require

    return require("ray", "'ray[data]'  (or: pip install -e '.[ray]')")


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Connect to ``address`` or start a local instance (no dashboard), once per process."""
    import warnings

    ray = _ray()
    if not ray.is_initialized():
        with warnings.catch_warnings():  # lancedb warns on fork; Ray forks only to exec its own processes
            warnings.filterwarnings("ignore", message="lancedb fork support")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False


def ray_outcomes(items: list[Any], cfg: Any, pipeline_config: Any) -> Iterator[tuple[Any, Any, Any]]:
    """Run the items through Ray Data; yield ``(item, row, None)`` or ``(item, None, error)``.

    With ``cfg.ray_write == "workers"`` the row is None for items an actor already committed.

    Args:
        items: :class:`~tagging.serving.backfill.sources.Item` list (the planned full work).
        cfg: The :class:`~tagging.serving.backfill.run.BackfillConfig`.
        pipeline_config: ``PipelineConfig`` the actors build their pipeline from.
    """
    if not items:
        return
    ray = _ray()
    import torch

    from tagging import errors as terrors
    from tagging.errors import DecoderCrash

    init_ray(cfg.ray_address, num_cpus=None if cfg.ray_address else max(2, cfg.workers + 1))
    gpus = 1 if torch.cuda.is_available() else 0
    by_uri = {it.uri: it for it in items}
    rows = [{"uri": it.uri, "video_id": it.video_id or "", "caption_json": json.dumps(it.caption),
             "metadata_json": json.dumps(it.metadata, default=str)} for it in items]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // max(1, cfg.ray_batch_size)))
    catalog = {"uri": cfg.db, "table": cfg.table, "storage_options": cfg.storage_options} \
        if cfg.ray_write == "workers" else None
    ds = ds.map_batches(DecodeAndAnalyze, fn_constructor_kwargs={
        "pipeline_config": pipeline_config, "decode_timeout_s": cfg.decode_timeout_s,
        "decode_memory_mb": cfg.decode_memory_mb, "catalog": catalog},
        concurrency=max(1, cfg.workers), batch_size=cfg.ray_batch_size,
        num_gpus=gpus, num_cpus=1, batch_format="numpy")
    for batch in ds.iter_batches(batch_size=cfg.ray_batch_size, batch_format="numpy"):
        for uri, payload in zip(batch["uri"], batch["payload"]):
            out = pickle.loads(payload)
            item = by_uri[str(uri)]
            item.video_id = out[1] or item.video_id
            if out[0] == "ok":
                yield item, out[2], None
            else:
                cls = getattr(terrors, out[2], None)
                err = cls(out[3], out[4]) if isinstance(cls, type) and issubclass(cls, TaggingError) else \
                    DecoderCrash(out[3], f"{out[2]}: {out[4]}")
                yield item, None, err
