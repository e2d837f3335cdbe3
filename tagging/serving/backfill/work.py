"""The work on one backfill item, shared by the local and the Ray engines: fetch, decode, analyse."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Protocol

from tagging.errors import TaggingError
from tagging.inputs import resolve_source
from tagging.serving.backfill.fetch import fetched, is_remote
from tagging.serving.backfill.sources import Item, resolve_id
from tagging.serving.isolation import DecodePool, DecodeSettings
from tagging.store.catalog import validate_video_id

if TYPE_CHECKING:
    from tagging.media import DecodedMedia
    from tagging.pipeline import Analyzer

Outcome = tuple[Item, "dict[str, Any] | None", "TaggingError | None"]


class EngineSettings(Protocol):
    """The parts of ``BackfillConfig`` an engine reads."""

    workers: int
    decode_timeout_s: float
    decode_memory_mb: int | None


def local_outcomes(items: list[Item], cfg: EngineSettings, pipeline: Analyzer) -> Iterator[Outcome]:
    """Decode in ``cfg.workers`` child processes (a bounded window), analyse here, in completion order."""
    if not items:
        return
    settings = DecodeSettings.from_pipeline_config(pipeline.config)
    workers = max(1, cfg.workers)
    with DecodePool(settings, workers, cfg.decode_timeout_s, cfg.decode_memory_mb) as pool, \
            ThreadPoolExecutor(workers, thread_name_prefix="backfill-decode") as ex:
        todo = iter(items)
        inflight: dict[Future, Item] = {}

        def fill() -> None:
            while len(inflight) < 2 * workers:
                it = next(todo, None)
                if it is None:
                    return
                inflight[ex.submit(decode_item, pool, it)] = it

        fill()
        while inflight:
            finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for fut in finished:
                it = inflight.pop(fut)
                try:
                    yield it, analyze_item(pipeline, fut.result(), it), None
                except TaggingError as exc:
                    yield it, None, exc
            fill()


def decode_item(pool: DecodePool, item: Item) -> Any:
    """Decode one item in the pool (what its ``decode_fn`` returns); an ``http(s)://`` item is downloaded first (and deleted after)."""
    validate_video_id(resolve_id(item))
    if is_remote(item.uri):
        with fetched(item.uri, max_bytes=pool.settings.limits.max_file_bytes) as path:
            return pool.decode(path)
    return pool.decode(resolve_source(item.uri))


def analyze_item(pipeline: Analyzer, media: DecodedMedia, item: Item) -> dict[str, Any]:
    """The catalog row of a decoded item; a fetched item keeps its URL (not the deleted download)."""
    result = pipeline.analyze_media(media, item.video_id, item.caption, item.metadata)
    if is_remote(item.uri):
        result.source_uri = result.info.path = item.uri
    return result.to_row()
