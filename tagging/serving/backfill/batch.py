"""Batched backfill work: decoding, audio and OCR in worker processes, model work batched across videos.

A worker process (:class:`~tagging.serving.isolation.DecodePool` with :func:`decode_and_describe`)
probes and decodes one video and runs its per-video work (the audio features: librosa and the
small VAD; OCR on a few frames: small ONNX models, one thread), so it runs ahead of the parent.
The parent takes the videos that are ready, up to ``batch_videos``, and runs :func:`analyze_batch`:
the frames of all of them in one forward pass, speech and review per video, all their texts in
one text batch, then fusion, tags and CB2CF per video. Nothing grows with the catalog: at most
``batch_videos + 2 * workers`` decoded videos are held at once.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tagging.enrich.enricher import Enricher
from tagging.enrich.ocr import OcrConfig, OcrHit, OcrReader
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
    """Decode settings plus what a worker runs after decoding: the audio extractor and OCR."""

    audio_extractor: str = "audio-librosa"
    ocr: bool = True
    ocr_config: OcrConfig = field(default_factory=OcrConfig)

    @classmethod
    def from_pipeline_config(cls, cfg: Any) -> PrepareSettings:
        """Take the decode settings, the audio extractor and the OCR settings of a ``PipelineConfig``."""
        return cls(cfg.limits, cfg.num_frames, cfg.max_side, cfg.sample_rate, cfg.audio_extractor,
                   cfg.enrich.ocr, cfg.enrich.ocr_config)


@dataclass
class Prepared:
    """What a worker hands back: the decoded media, its audio features and OCR, the seconds each took."""

    media: DecodedMedia
    audio: Features | None = None
    ocr: list[OcrHit] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def warm_worker(settings: PrepareSettings) -> None:
    """Worker start-up: one thread for the numeric libraries (the parent's models use the cores), then
    the audio stack's imports and models on a second of noise, so no video pays for them."""
    import sys

    import numpy as np
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if "torch" in sys.modules:  # only when something already loaded it (the default VAD runs without torch)
        sys.modules["torch"].set_num_threads(1)
    noise = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    get_extractor(settings.audio_extractor).extract(ItemContent(audio=noise))
    if settings.ocr:
        OcrReader(settings.ocr_config).load()


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
    if settings.ocr and media.frames:
        t = time.perf_counter()
        try:
            out.ocr = OcrReader(settings.ocr_config).read(media.frames, media.timestamps)
        except TaggingError as exc:  # as the Enricher records it
            out.errors["ocr"] = f"{exc.error_class}: {exc.reason}"
        out.timings["ocr"] = time.perf_counter() - t
    return out


def _frames_batch(pipeline: Pipeline, contents: list[ItemContent]) -> tuple[list[Features] | None, float]:
    """The frames of every item in one pass; None when it failed (then each video runs its own)."""
    t = time.perf_counter()
    try:
        feats = pipeline.frames.extract_batch(contents)
    except ExtractorError:
        feats = None
    return feats, time.perf_counter() - t


_ENRICHERS: dict[int, Enricher] = {}


def _without_ocr(pipeline: Pipeline) -> Enricher:
    """The pipeline's enrichment minus OCR (same models, through the model cache)."""
    key = id(pipeline.enricher)
    if key not in _ENRICHERS:
        _ENRICHERS[key] = Enricher(dataclasses.replace(pipeline.enricher.config, ocr=False))
    return _ENRICHERS[key]


def analyze_batch(pipeline: Pipeline, batch: list[tuple[Item, Prepared]]) -> list[Outcome]:
    """Rows of several prepared videos, with the frame model and the text model each run once for all of them."""
    from tagging.pipeline import Precomputed, joined_text, text_sources

    captions = [caption_text(it.caption) for it, _ in batch]
    contents = [ItemContent(p.media.frames, p.media.timestamps, p.media.audio, p.media.sample_rate)
                for _, p in batch]
    frames, frames_s = _frames_batch(pipeline, contents)
    enricher = _without_ocr(pipeline)  # OCR ran in the worker
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
        pre.enrichment = enricher.run(prep.media, ratio, tm, pre.errors)
        pre.enrichment.ocr = prep.ocr
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
    warmup = functools.partial(warm_worker, settings)
    with DecodePool(settings, workers, cfg.decode_timeout_s, cfg.decode_memory_mb, decode_and_describe, warmup) as pool, \
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
