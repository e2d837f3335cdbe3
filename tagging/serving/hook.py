"""The upload hook: what an upload service calls for every new video.

    >>> from tagging.serving import UploadHook, HookConfig
    >>> hook = UploadHook(HookConfig(db="tagging.lancedb", space="cf_space/"))
    >>> row = hook("/uploads/abc.mp4", video_id="abc", caption="Surfing at dawn #surf")
    >>> row["tags"], row["cf_vector"], row["audience"][:3]

Decoding runs in an isolated child process (:class:`~tagging.serving.isolation.DecodePool`:
timeout, memory limit, crash -> typed error); the models run in this process; the row
is written through a micro-batching :class:`~tagging.store.writer.BatchWriter`
(many concurrent uploads share one commit) and the call returns once it is committed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cb2cf.audience import Audience, AudienceConfig
from tagging import coldstart
from tagging.errors import MediaNotFound, TaggingError, UnknownUser
from tagging.inputs import Caption, default_video_id, resolve_source
from tagging.serving.isolation import (
    DEFAULT_DECODE_MEMORY_MB,
    DEFAULT_DECODE_TIMEOUT_S,
    DecodeFn,
    DecodePool,
    DecodeSettings,
    default_decode,
)
from tagging.store.catalog import DEFAULT_DB, Catalog, jsonable_row, validate_video_id
from tagging.store.exposure import ExposureStore
from tagging.store.interactions import FoldInConfig, InteractionStore
from tagging.store.interests import InterestStore
from tagging.store.writer import BatchWriter, Maintainer, WriterConfig

if TYPE_CHECKING:
    from tagging.pipeline import Analyzer, PipelineConfig

logger = logging.getLogger(__name__)


@dataclass
class HookConfig:
    """Everything the hook (and the HTTP service) is configured with.

    Attributes:
        db: LanceDB directory of the catalog.
        table: Catalog table name.
        pipeline: Pipeline settings (a ``PipelineConfig``; default when None).
        decode_workers: Isolated decode processes.
        decode_timeout_s: Wall-clock limit of one decode.
        decode_memory_mb: Address-space limit of a decode process.
        writer: Micro-batching settings.
        maintenance_interval_s: Seconds between ``optimize`` runs; None disables them.
        keep_versions: Table versions younger than this survive maintenance.
        space: Directory of a saved CF space; enables audiences and warm-up.
        audience: Seed-audience settings.
        foldin: Fold-in settings (how interactions move a new video's CF vector).
        accept_new_users: With a CF space its users are the known ones: a batch naming another user
            is refused whole (``UnknownUser``, 404), nothing stored. True: store them (users who
            joined since the space was trained; counted as ``unknown_users``, no effect on the vector).
    """

    db: str = DEFAULT_DB
    table: str = "videos"
    pipeline: PipelineConfig | None = None
    decode_workers: int = 1
    decode_timeout_s: float = DEFAULT_DECODE_TIMEOUT_S
    decode_memory_mb: int = DEFAULT_DECODE_MEMORY_MB
    writer: WriterConfig = field(default_factory=WriterConfig)
    maintenance_interval_s: float | None = 600.0
    keep_versions: timedelta = timedelta(minutes=10)
    space: str | None = None
    audience: AudienceConfig = field(default_factory=AudienceConfig)
    foldin: FoldInConfig = field(default_factory=FoldInConfig)
    accept_new_users: bool = False


class UploadHook:
    """Ingest one upload at a time from any number of threads; return its row.

    Args:
        config: Hook settings.
        pipeline: An already loaded :class:`~tagging.pipeline.Pipeline` to share (else one is built lazily).
        decode_fn: Decode function run in the child processes (tests inject faults here).
    """

    def __init__(self, config: HookConfig | None = None, pipeline: Analyzer | None = None,
                 decode_fn: DecodeFn = default_decode) -> None:
        self.config = cfg = config or HookConfig()
        self._pipeline = pipeline
        self._decode_fn = decode_fn
        self._pool: DecodePool | None = None
        self._writer: BatchWriter | None = None
        self._maintainer: Maintainer | None = None
        self._catalog: Catalog | None = None
        self._audience: Audience | None = None
        self._space: Any = None
        self._interactions: InteractionStore | None = None
        self._interest_store: InterestStore | None = None
        self._exposure_store: ExposureStore | None = None
        self._models = threading.Lock()
        self._init = threading.Lock()
        self.ready = False
        if cfg.space:
            from cb2cf.space import CFSpace

            self._space = CFSpace.load(cfg.space)

    # ---------------------------------------------------------------- parts, built on first use
    @property
    def pipeline(self) -> Analyzer:
        """The pipeline (models load on first use)."""
        with self._init:
            if self._pipeline is None:
                from tagging.pipeline import Pipeline, PipelineConfig

                self._pipeline = Pipeline(self.config.pipeline or PipelineConfig())
        return self._pipeline

    @property
    def catalog(self) -> Catalog:
        """The catalog, created with the pipeline's dims."""
        if self._catalog is None:
            dims = self.pipeline.dims()
            with self._init:
                if self._catalog is None:
                    self._catalog = Catalog(self.config.db, self.config.table, dims=dims)
                    self._catalog.table  # noqa: B018 - create now, not in the writer thread
        return self._catalog

    @property
    def writer(self) -> BatchWriter:
        """The micro-batching writer (and the maintenance schedule)."""
        catalog = self.catalog
        with self._init:
            if self._writer is None:
                self._writer = BatchWriter(catalog, self.config.writer)
                if self.config.maintenance_interval_s:
                    self._maintainer = Maintainer(catalog, self.config.maintenance_interval_s, self.config.keep_versions)
        return self._writer

    @property
    def pool(self) -> DecodePool:
        """The isolated decode processes."""
        with self._init:
            if self._pool is None:
                cfg = self._pipeline.config if self._pipeline is not None else (self.config.pipeline or _default_cfg())
                settings = DecodeSettings.from_pipeline_config(cfg)
                self._pool = DecodePool(settings, self.config.decode_workers, self.config.decode_timeout_s,
                                        self.config.decode_memory_mb, self._decode_fn)
        return self._pool

    @property
    def space(self) -> Any:
        """The CF space, or None."""
        return self._space

    @property
    def interactions(self) -> InteractionStore:
        """The interactions table."""
        with self._init:
            if self._interactions is None:
                self._interactions = InteractionStore(self.config.db, self.config.foldin)
        return self._interactions

    @property
    def interest_store(self) -> InterestStore:
        """Users' stated interests (the ``interests`` table)."""
        with self._init:
            if self._interest_store is None:
                self._interest_store = InterestStore(self.config.db)
        return self._interest_store

    @property
    def exposure_store(self) -> ExposureStore:
        """Each video's place on the cold-start ladder (the ``exposure`` table)."""
        with self._init:
            if self._exposure_store is None:
                self._exposure_store = ExposureStore(self.config.db)
        return self._exposure_store

    def audience_model(self) -> Audience | None:
        """The seed-audience model (k-means fitted once), or None without a space."""
        if self._space is None:
            return None
        with self._init:
            if self._audience is None:
                self._audience = Audience(self._space, self.config.audience)
        return self._audience

    def start(self) -> float:
        """Load models, start the decode processes and the writer; return the seconds it took."""
        t0 = time.perf_counter()
        self.pipeline.load_models()
        model = getattr(self.pipeline, "cb2cf", None)
        if self._space is not None and model is not None:  # refuse a model trained for another space
            coldstart.check_model_space(model, self._space, str(self.pipeline.config.cb2cf_model))
        _ = self.pool, self.writer, self.audience_model()
        self.ready = True
        return time.perf_counter() - t0

    # ---------------------------------------------------------------- the hook
    def __call__(self, source: str | Path, video_id: str | None = None, caption: Caption = None,
                 metadata: dict[str, Any] | None = None, with_audience: bool = True,
                 source_uri: str | None = None, vectors: bool = False) -> dict[str, Any]:
        """Ingest one video and return its row.

        Args:
            source: Local path or ``file://`` URI.
            video_id: Catalog key; derived from name and content when None.
            caption: Caption string or ``{"title", "description", "hashtags"}``.
            metadata: Free-form metadata stored with the row.
            with_audience: Add ``"audience"`` (needs a CF space and a CB2CF model).
            source_uri: What the row (``source_uri``, ``probe_json.path``) and the errors name as
                the source (default: the resolved path), e.g. ``upload://name.mp4`` for a file that
                only lived in a temp folder, so no server path reaches the caller.
            vectors: Include the feature vectors (``cf_vector`` is always there), as ``GET /videos/{id}``.

        Returns:
            The committed row as :func:`~tagging.store.catalog.jsonable_row` gives it (tags, review
            flags, cf_vector, ...) plus ``"audience"`` when available and ``"timings_ms"``.

        Raises:
            InvalidVideoId: Malformed id.
            MediaError: Missing, corrupt or over-limit file; DecodeTimeout / DecoderCrash
                when the decoder hangs or dies.
            CatalogError: The write failed.
        """
        t0 = time.perf_counter()
        if video_id is not None:
            validate_video_id(video_id)
        timings: dict[str, float] = {}
        try:
            row = self._analyze(source, video_id, caption, metadata, timings, source_uri)
        except TaggingError as exc:
            if source_uri:  # name the upload, never the temp file it lived in
                exc.reason = exc.reason.replace(str(source), source_uri)
                exc.source = source_uri
            raise
        t = time.perf_counter()
        self.writer.write(row)
        timings["write"] = time.perf_counter() - t
        out = jsonable_row(self.catalog.complete(row), vectors=vectors)
        if with_audience and row.get("cf_vector") is not None and self._space is not None:
            out["audience"] = self.audience_model().seed(np.asarray(row["cf_vector"], np.float32))
        timings["total"] = time.perf_counter() - t0
        out["timings_ms"] = {k: round(v * 1000, 1) for k, v in timings.items()}
        return out

    def _analyze(self, source: str | Path, video_id: str | None, caption: Caption, metadata: dict[str, Any] | None,
                 timings: dict[str, float], source_uri: str | None) -> dict[str, Any]:
        """Decode (isolated) and analyse one file; its row, with ``source_uri`` as its source when given."""
        path = resolve_source(source)
        vid = video_id or default_video_id(path)
        t = time.perf_counter()
        media = self.pool.decode(path)
        timings["decode"] = time.perf_counter() - t
        with self._models:
            result = self.pipeline.analyze_media(media, vid, caption, metadata, timings)
        row = result.to_row()
        if source_uri:
            row["source_uri"] = source_uri
            probe = json.loads(row.get("probe_json") or "{}")
            if "path" in probe:
                probe["path"] = source_uri
                row["probe_json"] = json.dumps(probe)
        return row

    # ---------------------------------------------------------------- reads and the cold-start loop
    def get(self, video_id: str) -> dict[str, Any] | None:
        """The stored row of ``video_id`` (latest version), or None.

        Raises:
            InvalidVideoId: Malformed id.
        """
        validate_video_id(video_id)
        cat = self.catalog
        cat.table.checkout_latest()
        return cat.get(video_id)

    def item_vector(self, video_id: str) -> dict[str, Any]:
        """The item's current CF vector: CB2CF prior warmed up by its interactions.

        Raises:
            InvalidVideoId: Malformed id.
            TaggingError: Unknown video, no CF vector, or no CF space configured.
        """
        row = self.get(video_id)
        if row is None:
            raise MediaNotFound(video_id, "video is not in the catalog")
        if row.get("cf_vector") is None:
            raise TaggingError(video_id, "video has no CF vector (no CB2CF model at ingest, or the video has none "
                                         "of the model's views)")
        if self._space is None:
            raise TaggingError(video_id, "no CF space configured")
        return self.interactions.warm_vector(video_id, np.asarray(row["cf_vector"], np.float32), self._space)

    def audience(self, video_id: str, k: int | None = None, exploration: float | None = None) -> dict[str, Any]:
        """Seed audience of a stored video from its current (warmed-up) vector.

        Raises:
            TaggingError: As :meth:`item_vector`.
            ValueError: ``exploration`` outside [0, 1].
        """
        state = self.item_vector(video_id)
        users = self.audience_model().seed(np.asarray(state["vector"], np.float32), k, exploration)
        return {"video_id": video_id, "blend": state["blend"], "users": users}

    def recommend(self, user_id: str, k: int = 20, new_share: float = 0.2,
                  max_tag_share: float = 0.5) -> dict[str, Any]:
        """A user's candidates: warm items of the CF space mixed with new catalog videos
        (:func:`tagging.serving.recommend.recommend`).

        Nothing the user interacted with, no video that failed review; new videos scored with
        their current (folded-in) vectors, ``round(new_share * k)`` slots reserved for them;
        no tag over ``max_tag_share`` of the list; the user's stated interests take their share.

        Returns:
            ``{"user_id", "new_share", "max_tag_share", "interest_share", "items", "tag_coverage"}``;
            each item has ``id``, ``score``, ``source`` (``warm`` / ``new``), ``reason`` and ``reason_kind``.

        Raises:
            UnknownUser: ``user_id`` is not in the CF space.
            TaggingError: No CF space configured.
            ValueError: A share outside its range.
        """
        from cb2cf.errors import UnknownIdError
        from tagging.serving.recommend import recommend

        if self._space is None:
            raise TaggingError("service", "no CF space configured")
        if not 0.0 <= new_share <= 1.0:
            raise ValueError(f"new_share must be in [0, 1], got {new_share}")
        if not self._space.has_user(user_id):
            raise UnknownUser(user_id, "user is not in the CF space")
        interests = self.interest_store.get(user_id)
        try:
            return recommend(self._space, self.catalog, self.interactions, user_id, k, new_share, max_tag_share,
                             interests)
        except UnknownIdError as exc:
            raise UnknownUser(user_id, str(exc)) from None

    def record_interactions(self, video_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Store events and return the item's updated vector state.

        The whole batch is checked before anything is stored: a refused request writes nothing.

        Raises:
            MediaNotFound: The video is not in the catalog.
            UnknownUser: With a CF space and ``accept_new_users`` off, an event names a user not in
                the space (the first such user is named, with the video and how many are unknown).
            InvalidInteraction: A malformed event.
            TaggingError: As :meth:`item_vector`.
        """
        row = self.get(video_id)
        if row is None:
            raise MediaNotFound(video_id, "video is not in the catalog")
        if self._space is not None and row.get("cf_vector") is None:  # refuse before storing anything
            self.item_vector(video_id)
        if self._space is not None and not self.config.accept_new_users:
            unknown = sorted(u for u in {str(e.get("user_id") or "") for e in events} if u and not self._space.has_user(u))
            if unknown:
                raise UnknownUser(unknown[0], f"user {unknown[0]!r} is not in the CF space: events for video "
                                  f"{video_id!r} refused, nothing stored ({len(unknown)} unknown user(s) in the batch)")
        n = self.interactions.record(video_id, events)
        state = self.item_vector(video_id) if self._space is not None else {"video_id": video_id}
        state["recorded"] = n
        return state

    def close(self) -> None:
        """Flush pending writes, stop maintenance and the decode processes."""
        if self._maintainer is not None:
            self._maintainer.stop()
        if self._writer is not None:
            self._writer.close()
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> UploadHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _default_cfg() -> Any:
    from tagging.pipeline import PipelineConfig

    return PipelineConfig()
