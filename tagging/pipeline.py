"""The ingest pipeline: a video file becomes features, tags and a catalog row.

``Pipeline.analyze`` runs probe -> decode -> extractors -> tagger for one file and
returns a typed :class:`VideoResult`; ``Pipeline.ingest`` writes results to the
LanceDB catalog. Both take one item or many; a bad file becomes a recorded
failure, never a stopped batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol

import numpy as np

from tagging import coldstart
from tagging.enrich.enricher import EnrichConfig, Enricher, Enrichment
from tagging.errors import ExtractorError, TaggingError
from tagging.extractors import AudioCues, Features, ItemContent, get_extractor, l2_normalize
from tagging.extractors.text import DEFAULT_TEXT_EXTRACTOR
from tagging.inputs import MEDIA_EXTENSIONS, Caption, caption_text, default_video_id, expand_paths, load_captions
from tagging.media import DecodedMedia, MediaLimits, decode, probe
from tagging.media.thumbs import make_thumbnails
from tagging.media.types import DEFAULT_NUM_FRAMES
from tagging.results import Failure, IngestReport, VideoResult
from tagging.store.catalog import Catalog, CatalogDims, default_db, validate_video_id
from tagging.tags.replay import media_parts, parts_to_json
from tagging.tags.tagger import Tag, Tagger, TaggerConfig
from tagging.tags.taxonomy import load_taxonomy

if TYPE_CHECKING:
    from cb2cf import CB2CF
    from tagging.extractors import Extractor

logger = logging.getLogger(__name__)

__all__ = [
    "MEDIA_EXTENSIONS", "Caption", "Failure", "IngestReport", "Pipeline", "PipelineConfig", "VideoResult",
    "caption_text", "default_video_id", "expand_paths", "load_captions",
]


@dataclass
class PipelineConfig:
    """Everything the pipeline can be configured with.

    Attributes:
        frames_extractor: Registry name of the frame extractor ("effnet-lite0" or "clip").
        frames_config: Keyword config of the frame extractor (e.g. ``{"model": "/models/clip"}``).
        audio_extractor: Registry name of the audio extractor.
        text_extractor: Registry name of the text extractor ("text-muse", "text-e5" or "text-minilm").
        num_frames: Frames sampled per video.
        max_side: Longest side of decoded frames.
        sample_rate: Audio sample rate.
        limits: Probe-time limits.
        taxonomy: Path of a taxonomy file, or None for the packaged default.
        tagger: Tag fusion settings.
        fused_weights: Weight of each modality's block in the fused vector.
        cb2cf_model: Directory of a trained CB2CF model; when set, rows get a CF vector.
        enrich: Speech recognition, OCR, review gate and policy screen settings.
        tag_head: Directory of a trained tag head (``tagging train-tags``); its categories are
            scored by the head, the rest stay zero-shot.
    """

    frames_extractor: str = "effnet-lite0"
    frames_config: dict[str, Any] = field(default_factory=dict)
    audio_extractor: str = "audio-librosa"
    text_extractor: str = DEFAULT_TEXT_EXTRACTOR
    num_frames: int = DEFAULT_NUM_FRAMES
    max_side: int = 320
    sample_rate: int = 16000
    limits: MediaLimits = field(default_factory=MediaLimits)
    taxonomy: str | None = None
    tagger: TaggerConfig = field(default_factory=TaggerConfig)
    fused_weights: dict[str, float] = field(default_factory=lambda: {"frames": 1.0, "audio": 0.5, "text": 1.0})
    cb2cf_model: str | None = None
    enrich: EnrichConfig = field(default_factory=EnrichConfig)
    tag_head: str | None = None


@dataclass
class Precomputed:
    """Work done before :meth:`Pipeline.analyze_media` (batched by the backfill); what is missing runs."""

    features: dict[str, Features] = field(default_factory=dict)
    enrichment: Enrichment | None = None
    errors: dict[str, str] = field(default_factory=dict)


def text_sources(caption: str, enrichment: Enrichment) -> dict[str, str]:
    """The texts the tagger reads (caption, transcript, on-screen text); the text view embeds them joined."""
    return {"caption": caption, "transcript": enrichment.transcript_text, "ocr": enrichment.ocr_text}


def joined_text(texts: dict[str, str]) -> str:
    return ". ".join(t for t in texts.values() if t)


def add_text_timestamps(tags: list[Tag], enrichment: Enrichment) -> None:
    """Point transcript and OCR evidence at the times in the video where the words occur."""
    for tag in tags:
        ev = tag.evidence.get("text")
        if not ev:
            continue
        if ev.get("source") == "ocr" and enrichment.ocr:
            ev["timestamps"] = sorted({round(h.timestamp, 2) for h in enrichment.ocr})
        elif ev.get("source") == "transcript" and enrichment.transcript is not None:
            ev["segments"] = [(round(sg.start, 2), round(sg.end, 2), sg.text) for sg in enrichment.transcript.segments[:3]]


class Analyzer(Protocol):
    """What the serving layer needs of an analyser (:class:`tagging.pipeline.Pipeline`, or a test fake)."""

    config: PipelineConfig

    @property
    def extractors(self) -> dict[str, Extractor]: ...

    @property
    def cb2cf(self) -> CB2CF | None: ...

    def dims(self, cf_dim: int | None = None) -> CatalogDims: ...

    def load_models(self) -> float: ...

    def analyze_media(self, media: DecodedMedia, video_id: str, caption: Any = None,
                      metadata: dict[str, Any] | None = None) -> VideoResult: ...


class Pipeline:
    """Analyse videos and write them to the catalog.

    Args:
        config: Pipeline settings; defaults give the offline EfficientNet + librosa + MiniLM stack.
    """

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        cfg = self.config
        self.frames = get_extractor(cfg.frames_extractor, **cfg.frames_config)
        self.audio = get_extractor(cfg.audio_extractor)
        self.text = get_extractor(cfg.text_extractor)
        self.tagger = Tagger(load_taxonomy(cfg.taxonomy), cfg.tagger, cfg.text_extractor)
        if cfg.tag_head:  # raises ModelLoadError / HeadMismatchError when it does not fit
            from tagging.tags.heads import TagHead

            self.tagger.set_head(TagHead.load(
                cfg.tag_head, self.tagger.taxonomy.taxonomy_id, sum(e.dim for e in self.extractors.values()),
                {m: e.extractor_id for m, e in self.extractors.items()}, cfg.fused_weights,
            ))
        if hasattr(self.frames, "embed_texts"):
            self.tagger.clip_extractor = self.frames  # zero-shot against the same CLIP model
        self.enricher = Enricher(cfg.enrich)
        self._cb2cf: Any = None

    @property
    def extractors(self) -> dict[str, Any]:
        """The extractor of each modality."""
        return {"frames": self.frames, "audio": self.audio, "text": self.text}

    @property
    def versions(self) -> dict[str, str]:
        """What a row's vectors and tags depend on: extractor ids, taxonomy id, tag head (stored per row)."""
        out = {m: e.extractor_id for m, e in self.extractors.items()}
        out["taxonomy"] = self.tagger.taxonomy.taxonomy_id
        if self.config.tag_head:
            out["tag_head"] = str(Path(self.config.tag_head).resolve())
        return out

    def dims(self, cf_dim: int | None = None) -> CatalogDims:
        """Vector sizes the catalog needs for this pipeline."""
        model = self.cb2cf
        cf = cf_dim or (model.cf_dim if model is not None else None)  # None: whatever the table has
        return CatalogDims(frames=self.frames.dim, audio=self.audio.dim, text=self.text.dim, cf=cf)

    @property
    def cb2cf(self) -> Any:
        """The configured CB2CF model, loaded on first use (None when not configured).

        Raises:
            ModelLoadError: The model files are bad, or its views (names, dims, extractor
                ids) do not match this pipeline's extractors.
        """
        if self._cb2cf is None and self.config.cb2cf_model:
            self._cb2cf = coldstart.load_model(self.config.cb2cf_model, self.extractors)
        return self._cb2cf

    def load_models(self) -> float:
        """Load every model now and run it once on inputs of the real shapes; return the seconds it took."""
        t0 = time.perf_counter()
        n = self.config.num_frames
        rng = np.random.default_rng(0)
        dummy = ItemContent(
            frames=[rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(n)],
            timestamps=[float(i) for i in range(n)],
            audio=(0.1 * rng.standard_normal(self.config.sample_rate * 2)).astype(np.float32),
            text="warm up",
        )
        for ext in self.extractors.values():
            ext.extract(dummy)
        self.tagger.prepare()
        self.enricher.load_models()
        _ = self.cb2cf
        return time.perf_counter() - t0

    def check_inputs(self, items: Iterable[str | Path | dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Failure]]:
        """Refuse bad inputs before any model loads (id, exists, probe, limits); return ``(passed dicts, failures)``."""
        ok: list[dict[str, Any]] = []
        failures: list[Failure] = []
        for it in items:
            it = it if isinstance(it, dict) else {"path": it}
            try:
                if it.get("video_id") is not None:
                    validate_video_id(it["video_id"])
                probe(it["path"], self.config.limits)
                ok.append(it)
            except TaggingError as exc:
                failures.append(Failure(str(it["path"]), it.get("video_id"), exc.error_class, exc.reason))
        return ok, failures

    # ---------------------------------------------------------------- analyse
    def analyze(
        self, path: str | Path, video_id: str | None = None, caption: Caption = None, metadata: dict[str, Any] | None = None
    ) -> VideoResult:
        """Decode one file, extract every modality, tag it and (if configured) predict its CF vector.

        Args:
            path: The media file.
            video_id: Catalog key; derived from the file name and content when None.
            caption: Caption string or ``{"title", "description", "hashtags"}``.
            metadata: Free-form metadata stored with the row.

        Returns:
            The typed result.

        Raises:
            InvalidVideoId: ``video_id`` is malformed.
            MediaError: The file is missing, not media, corrupt or over a limit.
            ExtractorError: A model failed on this item.
        """
        timings: dict[str, float] = {}
        if video_id is not None:
            validate_video_id(video_id)
        media = self.decode(path, timings)
        if video_id is None:
            video_id = default_video_id(path)
        return self.analyze_media(media, video_id, caption, metadata, timings)

    def decode(self, path: str | Path, timings: dict[str, float] | None = None) -> DecodedMedia:
        """Probe (limits first) and decode one file with this pipeline's settings.

        Raises:
            MediaError: The file is missing, not media, corrupt or over a limit.
        """
        cfg = self.config
        timings = {} if timings is None else timings
        t = time.perf_counter()
        info = probe(path, cfg.limits)
        timings["probe"] = time.perf_counter() - t
        t = time.perf_counter()
        media = decode(path, cfg.limits, cfg.num_frames, cfg.max_side, cfg.sample_rate, info=info)
        timings["decode"] = time.perf_counter() - t
        return media

    def analyze_media(
        self,
        media: DecodedMedia,
        video_id: str,
        caption: Caption = None,
        metadata: dict[str, Any] | None = None,
        timings: dict[str, float] | None = None,
        precomputed: Precomputed | None = None,
    ) -> VideoResult:
        """Run extractors, tagger and CB2CF on media decoded elsewhere (e.g. in a child process).

        Raises:
            InvalidVideoId: ``video_id`` is malformed.
        """
        validate_video_id(video_id)
        timings = {} if timings is None else timings
        pre = precomputed or Precomputed()
        info = media.info
        caption = caption_text(caption)
        item = ItemContent(media.frames, media.timestamps, media.audio, media.sample_rate, caption)
        features: dict[str, Features] = dict(pre.features)
        errors = {**media.errors, **pre.errors}
        for modality in ("frames", "audio"):
            if modality not in features:
                features[modality] = self._extract(modality, item, timings, errors)
        audio = features["audio"]
        speech_ratio = audio.cues.speech_ratio if audio.present and isinstance(audio.cues, AudioCues) else None
        enrichment = pre.enrichment or self.enricher.run(media, speech_ratio, timings, errors)
        texts = text_sources(caption, enrichment)
        item.text = joined_text(texts)  # the text view reads all three
        if "text" not in features:
            features["text"] = self._extract("text", item, timings, errors)
        fused, tags, parts = self._tag(features, texts, enrichment, timings)
        t = time.perf_counter()
        thumbnails = make_thumbnails(media.frames, media.timestamps)
        timings["thumbs"] = time.perf_counter() - t
        result = VideoResult(
            video_id=video_id, source_uri=str(Path(info.path).resolve()), info=info, caption=caption,
            metadata=metadata or {}, features=features, fused=fused, tags=tags, timings=timings, errors=errors,
            extractors=self.versions, taxonomy_id=self.tagger.taxonomy.taxonomy_id, truncated_at=media.truncated_at,
            enrichment=enrichment, thumbnails=thumbnails, tag_inputs=parts_to_json(parts, self.tagger.taxonomy),
        )
        if self.cb2cf is not None:
            t = time.perf_counter()
            result.cf_vector, result.cf_model_version = self.predict_cf(features, errors)
            timings["cb2cf"] = time.perf_counter() - t
        return result

    def _tag(self, features: dict[str, Features], texts: dict[str, str], enrichment: Enrichment,
             timings: dict[str, float]) -> tuple[np.ndarray, list[Tag], list[Any]]:
        """The fused vector, the tags (with the text evidence's times) and the visual/audio parts of the tags."""
        t = time.perf_counter()
        fused, media = self.fuse(features), media_parts(self.tagger, features)
        spoken = enrichment.transcript.language if enrichment.transcript is not None else None
        tags = self.tagger.tag(features, texts, head_input=fused, languages={"transcript": spoken}, media=media)
        add_text_timestamps(tags, enrichment)
        timings["tagging"] = time.perf_counter() - t
        return fused, tags, media

    def _extract(self, modality: str, item: ItemContent, timings: dict[str, float], errors: dict[str, str]) -> Features:
        ext = self.extractors[modality]
        t = time.perf_counter()
        try:
            return ext.extract(item)
        except ExtractorError as exc:
            logger.warning("%s extractor failed: %s", modality, exc)
            errors[modality] = exc.reason
            return ext.missing()
        finally:
            timings[modality] = time.perf_counter() - t

    def fuse(self, features: dict[str, Features]) -> np.ndarray:
        """Concatenate the weighted per-modality vectors (zeros for a missing one) and normalise."""
        blocks = []
        for modality, ext in self.extractors.items():
            f = features.get(modality)
            w = self.config.fused_weights.get(modality, 1.0)
            blocks.append(w * f.vector if f is not None and f.present else np.zeros(ext.dim, np.float32))
        return l2_normalize(np.concatenate(blocks))

    def predict_cf(self, features: dict[str, Features], errors: dict[str, str] | None = None,
                   ) -> tuple[np.ndarray | None, str]:
        """Predict the CF vector of one item with the configured CB2CF model.

        Returns:
            ``(vector, model version)``; the vector is None when the item has none of the
            model's views (then ``errors["cb2cf"]`` says so): the item is still tagged and
            stored, it just gets no place in the CF space from this model.
        """
        return coldstart.place(self.cb2cf, features, errors)

    # ---------------------------------------------------------------- ingest
    def ingest(
        self,
        items: Iterable[str | Path | dict[str, Any]],
        catalog: Catalog | str | Path | None = None,
        show_progress: bool = False,
    ) -> IngestReport:
        """Analyse items and upsert them into the catalog in one write.

        Args:
            items: Paths, or dicts with ``path`` and optional ``video_id``, ``caption``, ``metadata``.
            catalog: A Catalog, a database directory, or None for the default directory.
            show_progress: Show a tqdm progress bar.

        Returns:
            Results written and failures recorded. Failed items write nothing; the rest go through.

        Raises:
            CatalogError: The catalog write failed (then nothing of this batch is written).
        """
        report = IngestReport()
        work = [it if isinstance(it, dict) else {"path": it} for it in items]
        if show_progress:
            from tqdm import tqdm

            work = tqdm(work, desc="ingest", unit="video")
        for it in work:
            try:
                report.results.append(self.analyze(it["path"], it.get("video_id"), it.get("caption"), it.get("metadata")))
            except TaggingError as exc:
                logger.info("failed: %s", exc)
                report.failures.append(Failure(str(it["path"]), it.get("video_id"), exc.error_class, exc.reason))
        if report.results:
            if not isinstance(catalog, Catalog):
                catalog = Catalog(catalog or default_db(), dims=self.dims())
            t = time.perf_counter()
            catalog.upsert([r.to_row() for r in report.results])
            report.write_s = time.perf_counter() - t
            for r in report.results:
                r.timings["write"] = report.write_s / len(report.results)
        return report
