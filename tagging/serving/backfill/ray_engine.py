"""The backfill on Ray Data, for catalogs that outgrow one machine.

``ray.data.from_items(items).map_batches(DecodeAndAnalyze, concurrency=N, ...)``: a
callable class, so each actor loads the models once (on a GPU when the cluster has
them: ``num_gpus=1`` per actor) and decodes in its own isolated child process (the
same :class:`~tagging.serving.isolation.DecodePool` as the local engine). Actors
return pickled rows or typed failures; the driver writes them in batches, so the
table, the resume logic and the failures table are exactly those of the local engine.
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
    """

    def __init__(self, pipeline_config: Any, decode_timeout_s: float, decode_memory_mb: int) -> None:
        from tagging.pipeline import Pipeline
        from tagging.serving.isolation import DecodePool, DecodeSettings

        self.pipeline = Pipeline(pipeline_config)
        self.pipeline.load_models()
        self.pool = DecodePool(DecodeSettings.from_pipeline_config(pipeline_config), 1, decode_timeout_s, decode_memory_mb)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        """Process one batch of items (columns ``uri``, ``video_id``, ``caption_json``, ``metadata_json``)."""
        from tagging.serving.backfill.sources import Item
        from tagging.serving.backfill.work import analyze_item, decode_item

        keys, payloads = [], []
        for uri, vid, cap, meta in zip(batch["uri"], batch["video_id"], batch["caption_json"], batch["metadata_json"]):
            item = Item(str(uri), str(vid) if vid else None, json.loads(cap), json.loads(meta))
            try:
                row = analyze_item(self.pipeline, decode_item(self.pool, item), item)
                out: tuple = ("ok", item.video_id, row)
            except TaggingError as exc:
                out = ("err", item.video_id, exc.error_class, exc.source, exc.reason)
            keys.append(str(uri))
            payloads.append(pickle.dumps(out))
        return {"uri": keys, "payload": payloads}


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
    ds = ds.map_batches(DecodeAndAnalyze, fn_constructor_kwargs={
        "pipeline_config": pipeline_config, "decode_timeout_s": cfg.decode_timeout_s,
        "decode_memory_mb": cfg.decode_memory_mb}, concurrency=max(1, cfg.workers), batch_size=cfg.ray_batch_size,
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
