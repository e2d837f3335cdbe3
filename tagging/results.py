"""Typed results of the pipeline: one video's result, a failure record, an ingest report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from tagging.enrich.enricher import Enrichment
from tagging.extractors import Features
from tagging.media import MediaInfo
from tagging.media.thumbs import Thumbnails
from tagging.tags.tagger import Tag


@dataclass
class VideoResult:
    """What the pipeline learnt about one video."""

    video_id: str
    source_uri: str
    info: MediaInfo
    caption: str
    metadata: dict[str, Any]
    features: dict[str, Features]
    fused: np.ndarray
    tags: list[Tag]
    timings: dict[str, float]
    errors: dict[str, str] = field(default_factory=dict)
    extractors: dict[str, str] = field(default_factory=dict)
    taxonomy_id: str = ""
    cf_vector: np.ndarray | None = None
    cf_model_version: str | None = None
    enrichment: Enrichment | None = None
    truncated_at: float | None = None
    thumbnails: Thumbnails | None = None
    tag_inputs: str | None = None  # :func:`tagging.tags.replay.parts_to_json`: tags without decoding

    @property
    def duration_s(self) -> float:
        """Seconds of media the file really holds: the decoded extent of a truncated file, else the header's."""
        return self.truncated_at if self.truncated_at is not None else self.info.duration_s

    def summary(self) -> dict[str, Any]:
        """Compact JSON-friendly summary (what ``tagging ingest --json`` prints)."""
        return {
            "video_id": self.video_id,
            "source_uri": self.source_uri,
            "duration_s": round(self.duration_s, 3),
            "tags": [{"id": t.id, "score": round(t.score, 4)} for t in self.tags],
            "dims": {m: (int(f.vector.shape[0]) if f.present else None) for m, f in self.features.items()},
            "present": {m: f.present for m, f in self.features.items()},
            "cf_model_version": self.cf_model_version,
            "transcript": self.enrichment.transcript_text if self.enrichment else "",
            "language": self.enrichment.transcript.language if self.enrichment and self.enrichment.transcript else None,
            "ocr_text": self.enrichment.ocr_text if self.enrichment else "",
            "review": self.enrichment.review.to_dict() if self.enrichment and self.enrichment.review else None,
            "errors": self.errors,
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
        }

    def _enrichment_columns(self) -> dict[str, Any]:
        e = self.enrichment
        if e is None:
            return {}
        return {
            "transcript": e.transcript.text if e.transcript is not None else None,
            "transcript_json": json.dumps(e.transcript.to_dict(), default=_jsonable) if e.transcript is not None else None,
            "ocr_text": e.ocr_text if e.ocr is not None else None,
            "ocr_json": json.dumps([h.to_dict() for h in e.ocr], default=_jsonable) if e.ocr is not None else None,
            "review_json": json.dumps(e.review.to_dict(), default=_jsonable) if e.review is not None else None,
            "review_passed": e.review.passed if e.review is not None else None,
        }

    def _thumbnail_columns(self) -> dict[str, Any]:
        t = self.thumbnails
        if t is None:
            return {}
        return {"thumbnail": t.poster, "frame_thumbs": t.frames or None, "frame_times": t.times or None}

    def to_row(self) -> dict[str, Any]:
        """The catalog row for this result."""
        f = self.features

        def vec(m: str) -> list[float] | None:
            return f[m].vector.tolist() if m in f and f[m].present else None

        return {
            "video_id": self.video_id,
            "source_uri": self.source_uri,
            "caption": self.caption,
            "metadata_json": json.dumps(self.metadata, default=str),
            "container": self.info.container,
            "size_bytes": self.info.size_bytes,
            "duration_s": self.duration_s,
            "width": self.info.width,
            "height": self.info.height,
            "fps": self.info.fps,
            "rotation": self.info.rotation,
            "has_video": self.info.has_video,
            "has_audio": self.info.has_audio,
            "probe_json": json.dumps(self.info.to_dict(), default=str),
            "frames_present": "frames" in f and f["frames"].present,
            "audio_present": "audio" in f and f["audio"].present,
            "text_present": "text" in f and f["text"].present,
            "frames_vector": vec("frames"),
            "audio_vector": vec("audio"),
            "text_vector": vec("text"),
            "fused_vector": self.fused.tolist(),
            "tags": [t.id for t in self.tags],
            "tag_scores": [float(t.score) for t in self.tags],
            "tags_json": json.dumps([t.to_dict() for t in self.tags], default=_jsonable),
            **self._enrichment_columns(),
            **self._thumbnail_columns(),
            "cf_vector": self.cf_vector.tolist() if self.cf_vector is not None else None,
            "cf_model_version": self.cf_model_version,
            "extractors_json": json.dumps(self.extractors),
            "taxonomy_id": self.taxonomy_id,
            "tag_inputs_json": self.tag_inputs,
            "timings_json": json.dumps({k: round(v, 5) for k, v in self.timings.items()}),
            "ingested_at": datetime.now(timezone.utc),
        }


@dataclass
class Failure:
    """A file or id that could not be processed, and why."""

    source: str
    video_id: str | None
    error_class: str
    reason: str


@dataclass
class IngestReport:
    """Outcome of an ingest call: what was written and what failed."""

    results: list[VideoResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    write_s: float = 0.0


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
