"""Batched backfill work: decoding and audio in worker processes, model work batched across videos.

A worker process (:class:`~tagging.serving.isolation.DecodePool` with :func:`decode_and_describe`)
probes, decodes and computes the audio features of one video (librosa and the small VAD are
CPU work, not a shared model), so it runs ahead of the parent. The parent takes the videos
that are ready, up to ``batch_videos``, and runs :func:`analyze_batch`: the frames of all of
them in one forward pass, speech / OCR / review per video, all their texts in one text batch,
then fusion, tags and CB2CF per video. Nothing grows with the catalog: at most
``batch_videos + 2 * workers`` decoded videos are held at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tagging.errors import ExtractorError, TaggingError
from tagging.extractors import AudioCues, Features, ItemContent, get_extractor
from tagging.inputs import caption_text
from tagging.serving.backfill.fetch import is_remote
from tagging.serving.backfill.sources import Item
from tagging.serving.backfill.work import decode_item
from tagging.serving.isolation import DecodePool, DecodeSettings, default_decode

if TYPE_CHECKING:
    from tagging.media import DecodedMedia
    from tagging.pipeline import Pipeline

Outcome = tuple[Item, "dict[str, Any] | None", "TaggingError | None"]


@dataclass
class PrepareSettings(DecodeSettings):
    """Decode settings plus the audio extractor a worker runs after decoding."""

    audio_extractor: str = "audio-librosa"

    @classmethod
    def from_pipeline_config(cls, cfg: Any) -> PrepareSettings:
        """Take the decode settings and the audio extractor of a ``PipelineConfig``."""
        return cls(cfg.limits, cfg.num_frames, cfg.max_side, cfg.sample_rate, cfg.audio_extractor)


@dataclass
class Prepared:
    """What a worker hands back: the decoded media, its audio features, the seconds each took."""

    media: DecodedMedia
    audio: Features | None = None
    errors: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def decode_and_describe(path: str, settings: PrepareSettings) -> Prepared:
    """Worker body: probe (limits first), decode, then the audio features (a failure there is recorded, not raised)."""
    t = time.perf_counter()
    media = default_decode(path, settings)
    out = Prepared(media, timings={"decode": time.perf_counter() - t})
    t = time.perf_counter()
    ext = get_extractor(settings.audio_extractor)
    try:
        out.audio = ext.extract(ItemContent(media.frames, media.timestamps, media.audio, media.sample_rate))
    except ExtractorError as exc:
        out.audio, out.errors["audio"] = ext.missing(), exc.reason
    out.timings["audio"] = time.perf_counter() - t
    return out


def _frames_batch(pipeline: Pipeline, contents: list[ItemContent]) -> tuple[list[Features] | None, float]:
    """The frames of every item in one pass; None when it failed (then each video runs its own)."""
    t = time.perf_counter()
    try:
        feats = pipeline.frames.extract_batch(contents)
    except ExtractorError:
        feats = None
    return feats, time.perf_counter() - t


def analyze_batch(pipeline: Pipeline, batch: list[tuple[Item, Prepared]]) -> list[Outcome]:
    """Rows of several prepared videos, with the frame model and the text model each run once for all of them."""
    from tagging.pipeline import Precomputed, joined_text, text_sources

    captions = [caption_text(it.caption) for it, _ in batch]
    contents = [ItemContent(p.media.frames, p.media.timestamps, p.media.audio, p.media.sample_rate)
                for _, p in batch]
    frames, frames_s = _frames_batch(pipeline, contents)
    pres, timings = [], []
    for i, (_, prep) in enumerate(batch):
        pre = Precomputed(errors=dict(prep.errors))
        tm = dict(prep.timings)
        if prep.audio is not None:
            pre.features["audio"] = prep.audio
        if frames is not None:
            pre.features["frames"], tm["frames"] = frames[i], frames_s / len(batch)
        audio = prep.audio
        ratio = audio.cues.speech_ratio if audio is not None and isinstance(audio.cues, AudioCues) else None
        pre.enrichment = pipeline.enricher.run(prep.media, ratio, tm, pre.errors)
        contents[i].text = joined_text(text_sources(captions[i], pre.enrichment))
        pres.append(pre)
        timings.append(tm)
    t = time.perf_counter()
    try:
        for pre, feats in zip(pres, pipeline.text.extract_batch(contents)):
            pre.features["text"] = feats
    except ExtractorError:
        pass  # each video then runs (and records) its own text extraction
    for tm in timings:
        tm["text"] = (time.perf_counter() - t) / len(batch)
    out: list[Outcome] = []
    for (item, prep), pre, tm in zip(batch, pres, timings):
        try:
            result = pipeline.analyze_media(prep.media, item.video_id, item.caption, item.metadata, tm, pre)
            if is_remote(item.uri):
                result.source_uri = result.info.path = item.uri
            out.append((item, result.to_row(), None))
        except TaggingError as exc:
            out.append((item, None, exc))
    return out


def batched_outcomes(items: list[Item], cfg: Any, pipeline: Pipeline) -> Iterator[Outcome]:
    """Prepare in ``cfg.workers`` processes (running ahead), analyse ready videos in batches of ``cfg.batch_videos``."""
    if not items:
        return
    workers, size = max(1, cfg.workers), max(1, cfg.batch_videos)
    settings = PrepareSettings.from_pipeline_config(pipeline.config)
    with DecodePool(settings, workers, cfg.decode_timeout_s, cfg.decode_memory_mb, decode_and_describe) as pool, \
            ThreadPoolExecutor(workers, thread_name_prefix="backfill-prepare") as ex:
        todo = iter(items)
        inflight: dict[Future, Item] = {}
        ready: list[tuple[Item, Prepared]] = []
        while True:
            while len(inflight) + len(ready) < size + 2 * workers and (it := next(todo, None)) is not None:
                inflight[ex.submit(decode_item, pool, it)] = it  # a Prepared, from this pool
            if not inflight and not ready:
                return
            # block only when there is nothing to analyse; otherwise take what is done right now
            done, _ = wait(list(inflight), timeout=None if not ready else 0, return_when=FIRST_COMPLETED)
            for fut in done:
                it = inflight.pop(fut)
                try:
                    ready.append((it, fut.result()))
                except TaggingError as exc:
                    yield it, None, exc
            if ready and (len(ready) >= size or not done or not inflight):
                batch, ready = ready[:size], ready[size:]
                yield from analyze_batch(pipeline, batch)
