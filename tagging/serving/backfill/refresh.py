"""Text-only refresh of stored rows after a change of text extractor: no decode, no Whisper, no OCR.

A row stores the caption, the transcript and OCR hits (with their languages) and, in
``tag_inputs_json``, the visual and audio parts of its tags (:mod:`tagging.tags.replay`).
When only the text extractor changed, this recomputes what depends on the text view from
them: the text vector (caption + transcript + OCR text, joined as at ingest), the tags, the
fused vector and the CF vector (with a CB2CF model; else none, as a full re-analysis gives).
Frame and audio vectors, thumbnails, the transcript, OCR and review are kept as stored.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from tagging import coldstart
from tagging.enrich.enricher import Enrichment
from tagging.enrich.ocr import OcrHit
from tagging.enrich.speech import Segment, Transcript
from tagging.errors import ExtractorError
from tagging.extractors import Features, ItemContent
from tagging.tags.replay import Part, parts_from_json

if TYPE_CHECKING:
    from tagging.coldstart import RowSink
    from tagging.pipeline import Pipeline
    from tagging.store.catalog import Catalog

logger = logging.getLogger(__name__)


def text_only_change(stored: dict[str, str], current: dict[str, str]) -> bool:
    """True when ``stored`` and ``current`` extractor ids differ in the text extractor alone
    (frames and audio extractors, taxonomy and tag head unchanged)."""
    rest = {k: v for k, v in stored.items() if k != "text"}
    return "text" in stored and stored.get("text") != current.get("text") and rest == {
        k: v for k, v in current.items() if k != "text"}


def stored_enrichment(row: dict[str, Any]) -> Enrichment:
    """The transcript and OCR hits a row stores (review is not needed for tags)."""
    transcript = None
    if row.get("transcript_json"):
        t = json.loads(row["transcript_json"])
        transcript = Transcript(**{**t, "segments": [Segment(**s) for s in t.get("segments", [])]})
    ocr = None
    if row.get("ocr_json"):
        ocr = [OcrHit(**{**h, "box": tuple(h["box"])}) for h in json.loads(row["ocr_json"])]
    return Enrichment(transcript, ocr, None)


def refresh_text(catalog: Catalog, pipeline: Pipeline, video_ids: Sequence[str], writer: RowSink,
                 bar: Any = None, chunk: int = 32) -> tuple[int, set[str]]:
    """Recompute the text view, tags, fused vector and CF vector of stored rows from their stored texts.

    Args:
        catalog: The catalog holding the rows.
        pipeline: The loaded pipeline (its text extractor, tagger and CB2CF model).
        video_ids: Rows to refresh.
        writer: Where the updated rows go.
        bar: A progress bar to advance.
        chunk: Rows read and embedded at once.

    Returns:
        ``(rows refreshed, ids that need the full re-analysis)``: rows whose stored tag inputs are
        missing or made for other categories, or whose texts the extractor failed on.
    """
    n, leftovers = 0, set()
    for s in range(0, len(video_ids), chunk):
        ids = list(video_ids[s:s + chunk])
        rows = {r["video_id"]: r for r in catalog.get_many(ids)}
        ready = []
        for vid in ids:
            parts = parts_from_json(rows[vid].get("tag_inputs_json"), pipeline.tagger.taxonomy) if vid in rows else None
            if parts is None:
                leftovers.add(vid)
            else:
                ready.append((rows[vid], parts))
        try:
            for row in _refreshed(pipeline, ready):
                writer.submit(row)
                n += 1
        except ExtractorError as exc:
            logger.warning("text refresh failed, full re-analysis instead: %s", exc)
            leftovers |= {r["video_id"] for r, _ in ready}
        if bar is not None:
            bar.update(len(ids))
    return n, leftovers


def _refreshed(pipeline: Pipeline, ready: list[tuple[dict[str, Any], list[Part]]]) -> list[dict[str, Any]]:
    from tagging.pipeline import add_text_timestamps, joined_text, text_sources

    t0 = time.perf_counter()
    enrichments = [stored_enrichment(row) for row, _ in ready]
    texts = [text_sources(row.get("caption") or "", e) for (row, _), e in zip(ready, enrichments)]
    views = pipeline.text.extract_batch([ItemContent(text=joined_text(t)) for t in texts]) if ready else []
    per_row = (time.perf_counter() - t0) / max(len(ready), 1)
    out = []
    for (stored, parts), enrichment, text, view in zip(ready, enrichments, texts, views):
        t = time.perf_counter()
        row = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in stored.items() if not k.startswith("_")}
        features = {m: Features(pipeline.extractors[m].extractor_id, m, _vector(row, m)) for m in ("frames", "audio")}
        features["text"] = view
        fused = pipeline.fuse(features)
        spoken = enrichment.transcript.language if enrichment.transcript is not None else None
        tags = pipeline.tagger.tag(features, text, head_input=fused, languages={"transcript": spoken}, media=parts)
        add_text_timestamps(tags, enrichment)
        row.update({
            "text_present": view.present, "text_vector": view.vector.tolist() if view.present else None,
            "fused_vector": fused.tolist(), "tags": [g.id for g in tags], "tag_scores": [float(g.score) for g in tags],
            "tags_json": json.dumps([g.to_dict() for g in tags], default=_jsonable),
            "extractors_json": json.dumps(pipeline.versions), "ingested_at": datetime.now(timezone.utc),
        })
        model = pipeline.cb2cf
        cf, row["cf_model_version"] = coldstart.place(model, features) if model is not None else (None, None)
        row["cf_vector"] = cf.tolist() if cf is not None else None  # as a full re-analysis: none without a model
        timings = json.loads(row.get("timings_json") or "{}")
        timings["text_refresh"] = round(per_row + time.perf_counter() - t, 5)
        row["timings_json"] = json.dumps(timings)
        out.append(row)
    return out


def _vector(row: dict[str, Any], modality: str) -> np.ndarray | None:
    v = row.get(f"{modality}_vector")
    return np.asarray(v, np.float32) if row.get(f"{modality}_present") and v is not None else None


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.generic, np.ndarray)):
        return x.tolist()
    return str(x)
