"""The one door from catalog rows and extracted features to cb2cf.

Everything the media side asks of the CF side goes through here: loading a CB2CF model
and checking it against this pipeline's extractors and the served CF space, building the
model's views and masks (from one item's features or from stored rows), placing items in
the CF space, recomputing ``cf_vector`` for stored rows, and exporting the catalog's
features for ``cb2cf train``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from tagging.errors import CatalogError, ModelLoadError

if TYPE_CHECKING:  # cb2cf (torch, pandas) is imported on first use, not with the pipeline
    from cb2cf import CB2CF, CFSpace

logger = logging.getLogger(__name__)

Views = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


class ExtractorInfo(Protocol):
    """What the model check needs of an extractor."""

    @property
    def dim(self) -> int: ...

    @property
    def extractor_id(self) -> str: ...


class ModalityFeatures(Protocol):
    """What a view needs of one modality's features."""

    vector: np.ndarray
    present: bool


class RowSink(Protocol):
    """Where updated rows go (``tagging.store.writer.BatchWriter``)."""

    def submit(self, row: dict[str, Any]) -> Any: ...


def load_model(path: str | Path, extractors: Mapping[str, ExtractorInfo]) -> CB2CF:
    """Load a CB2CF model and check its views against the pipeline's extractors.

    Raises:
        ModelLoadError: The files are bad, or a view's name, dim or extractor id does not
            match the extractor that makes it.
    """
    from cb2cf import CB2CF, CB2CFError, ViewSpec, check_views

    try:
        model = CB2CF.load(path)
        unknown = sorted(set(model.views) - set(extractors))
        if unknown:
            raise ModelLoadError(str(path), f"model views {unknown} are not modalities this pipeline extracts")
        specs = {v: ViewSpec(v, extractors[v].dim, extractors[v].extractor_id) for v in model.views}
        check_views(model, specs, source=str(path))
    except CB2CFError as exc:
        raise ModelLoadError(str(path), str(exc)) from exc
    return model


def check_model_space(model: CB2CF, space: CFSpace, source: str = "cb2cf model") -> None:
    """Refuse a model that was not trained for ``space`` (other dim, id or version).

    Raises:
        ModelLoadError: The model and the space disagree.
    """
    from cb2cf import CB2CFError, Predictor

    try:
        Predictor(space, model)
    except CB2CFError as exc:
        raise ModelLoadError(source, str(exc)) from exc


def item_views(model: CB2CF, features: Mapping[str, ModalityFeatures | None]) -> Views:
    """The model's views and masks for one item (a batch of one)."""
    feats, masks = {}, {}
    for view, dim in model.views.items():
        f = features.get(view)
        present = f is not None and f.present
        feats[view] = (np.asarray(f.vector, np.float32) if present else np.zeros(dim, np.float32))[None, :]
        masks[view] = np.array([present])
    return feats, masks


def row_views(model: CB2CF, rows: Sequence[Mapping[str, Any]]) -> Views:
    """The model's views and masks for stored catalog rows (``<view>_vector`` / ``<view>_present``)."""
    feats, masks = {}, {}
    for view, dim in model.views.items():
        vecs = [r.get(f"{view}_vector") for r in rows]
        present = np.array([bool(r.get(f"{view}_present")) and v is not None for r, v in zip(rows, vecs)], bool)
        feats[view] = np.stack([np.asarray(v, np.float32) if p else np.zeros(dim, np.float32)
                                for v, p in zip(vecs, present)]) if rows else np.zeros((0, dim), np.float32)
        masks[view] = present
    return feats, masks


def place(model: CB2CF, features: Mapping[str, ModalityFeatures | None],
          errors: dict[str, str] | None = None) -> tuple[np.ndarray | None, str]:
    """Place one item in the CF space.

    Returns:
        ``(vector, model version)``; the vector is None when the item has none of the
        model's views (then ``errors["cb2cf"]`` says so): the item is still tagged and
        stored, it just gets no place in the CF space from this model.
    """
    vecs, placed = model.try_predict(*item_views(model, features))
    if not placed[0]:
        if errors is not None:
            errors["cb2cf"] = f"none of the CB2CF model's views {sorted(model.views)} is present: no CF vector"
        return None, model.version
    return vecs[0], model.version


def update_cf(catalog: Any, model: CB2CF, video_ids: Sequence[str], writer: RowSink,
              bar: Any = None, chunk: int = 256) -> int:
    """Recompute only ``cf_vector`` of stored rows from their per-modality vectors (no decode).

    Returns:
        Rows updated.
    """
    n = 0
    for s in range(0, len(video_ids), chunk):
        rows = catalog.get_many(list(video_ids[s:s + chunk]))
        if not rows:
            continue
        cf, placed = model.try_predict(*row_views(model, rows), ids=[r.get("video_id") for r in rows])
        for r, v, ok in zip(rows, cf, placed):
            row = {k: (val.tolist() if isinstance(val, np.ndarray) else val) for k, val in r.items() if not k.startswith("_")}
            row["cf_vector"], row["cf_model_version"] = (v.tolist() if ok else None), model.version
            writer.submit(row)
            n += 1
        if bar is not None:
            bar.update(len(rows))
    return n


def export_features(catalog: Any, path: str | Path, views: tuple[str, ...] = ("frames", "audio", "text")) -> int:
    """Write every row's per-modality vectors as a CB2CF feature table (``.npz``).

    The table holds ``ids``, one array per view (zeros where missing), ``mask__<view>``
    presence flags and ``extractor__<view>`` ids, the input of ``cb2cf train --features``.

    Returns:
        The number of rows written.

    Raises:
        CatalogError: The catalog is empty or mixes extractor versions for a view.
    """
    from cb2cf.features import save_features_npz

    cols = ["video_id", "extractors_json"] + [f"{v}_vector" for v in views] + [f"{v}_present" for v in views]
    data = catalog.columns(cols) if catalog.count() else []
    if not data:
        raise CatalogError(str(catalog.uri), "catalog is empty")
    dims = {"frames": catalog.dims.frames, "audio": catalog.dims.audio, "text": catalog.dims.text}
    feats = {v: np.zeros((len(data), dims[v]), np.float32) for v in views}
    masks = {v: np.zeros(len(data), bool) for v in views}
    extractor_ids: dict[str, set[str]] = {v: set() for v in views}
    for i, row in enumerate(data):
        ext = json.loads(row["extractors_json"] or "{}")
        for v in views:
            extractor_ids[v].add(ext.get(v, "unknown"))
            if row[f"{v}_present"] and row[f"{v}_vector"] is not None:
                feats[v][i] = row[f"{v}_vector"]
                masks[v][i] = True
    mixed = {v: sorted(ids) for v, ids in extractor_ids.items() if len(ids) > 1}
    if mixed:
        raise CatalogError(str(catalog.uri), f"rows were made by different extractor versions {mixed}; re-ingest first")
    ids = np.array([row["video_id"] for row in data])
    save_features_npz(str(path), ids, feats, masks, {v: next(iter(extractor_ids[v])) for v in views})
    return len(data)


class TextEmbedder(Protocol):
    """What :func:`place_text` needs of the pipeline's text extractor."""

    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


def place_text(model: CB2CF | None, text_extractor: TextEmbedder | None, text: str, source: str) -> np.ndarray:
    """Place a text alone in the CF space: the pipeline's text embedding through the model's ``text``
    view, every other view missing (how a user's stated interest finds its place).

    Raises:
        NotEligible: No CB2CF model, no text extractor, or the model has no text view.
    """
    from tagging.errors import NotEligible

    if model is None or text_extractor is None or "text" not in model.views:
        raise NotEligible(source, "placing a text needs a CB2CF model with a 'text' view and the pipeline's "
                                  "text extractor")
    vec = np.asarray(text_extractor.embed_texts([text]), np.float32)[0]
    feats = {v: np.zeros((1, d), np.float32) for v, d in model.views.items()}
    masks = {v: np.zeros(1, bool) for v in model.views}
    feats["text"], masks["text"] = vec[None], np.ones(1, bool)
    return model.predict(feats, masks)[0]
