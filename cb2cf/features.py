"""Feature dicts: named views, presence masks, validation and fingerprints.

A *view* is one named content feature vector per item (``"text"``, ``"frames"``,
``"audio"``, ``"genres"`` ...). Features travel as ``dict[str, np.ndarray]`` of shape
``(n, dim)`` (or ``(dim,)`` for one item) plus optional ``dict[str, np.ndarray[bool]]``
masks of shape ``(n,)``. A missing view is always an explicit ``False`` in the mask (or
the view's key left out of the dict, meaning missing for every item); it is never a
silent zero that looks like data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from cb2cf.errors import ContentError, FeatureMismatchError

Features = Mapping[str, np.ndarray]
Masks = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class ViewSpec:
    """One content view a model consumes.

    Attributes:
        name: View name (``"text"``).
        dim: Feature dimension.
        extractor_id: Id of the extractor that produced it (``"text-minilm@..."``).
    """

    name: str
    dim: int
    extractor_id: str = "unknown"


def _which(rows: np.ndarray, ids: Sequence[Any] | None) -> str:
    """Name the offending rows in an error: their ids when known, else their positions."""
    idx = np.flatnonzero(rows)
    if ids is not None and len(ids) == len(rows):
        return "ids " + ", ".join(repr(str(ids[i])) for i in idx[:5]) + (" ..." if len(idx) > 5 else "")
    return "rows " + ", ".join(str(i) for i in idx[:5]) + (" ..." if len(idx) > 5 else "")


def _check_view_names(features: Features, masks: Masks | None, views: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Refuse unknown views (in features or masks) and an empty feature dict; returns the masks as a dict.

    Raises:
        FeatureMismatchError: An unknown view or mask.
        ContentError: No features at all.
    """
    unknown = sorted(set(features) - set(views))
    if unknown:
        raise FeatureMismatchError(f"unknown views {unknown}; the model expects {dict(views)}")
    if not features:
        raise ContentError("no features given")
    masks = dict(masks or {})
    unknown_masks = sorted(set(masks) - set(views))
    if unknown_masks:
        raise FeatureMismatchError(f"masks for unknown views {unknown_masks}")
    return masks


def _as_matrices(features: Features, views: Mapping[str, int]) -> tuple[dict[str, np.ndarray], bool, int]:
    """Every given view as a float32 (n, dim) array.

    Returns:
        (features, single, n): ``single`` when the views were given as (dim,) vectors.

    Raises:
        FeatureMismatchError: A view with the wrong dim.
        ContentError: A view that is not 1-d or 2-d, or views with different row counts.
    """
    feats: dict[str, np.ndarray] = {}
    single = False
    for name, arr in features.items():
        a = np.asarray(arr, dtype=np.float32)
        if a.ndim == 1:
            a, single = a[None, :], True
        if a.ndim != 2:
            raise ContentError(f"view {name!r}: expected (n, dim) array, got shape {a.shape}")
        if a.shape[1] != views[name]:
            raise FeatureMismatchError(f"view {name!r} has dim {a.shape[1]}, the model expects {views[name]}")
        feats[name] = a
    ns = {name: len(a) for name, a in feats.items()}
    n = next(iter(ns.values()))
    if len(set(ns.values())) != 1:
        raise ContentError(f"views have different numbers of rows: {ns}")
    return feats, single, n


def _masked_view(name: str, f: np.ndarray, m: np.ndarray | None, n: int, single: bool,
                 ids: Sequence[Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """A present view's rows zeroed where its mask (default: all present) is False, and the mask.

    Raises:
        ContentError: A mask that is not bool of shape (n,), or NaN/inf in a present row.
    """
    if m is None:
        m = np.ones(n, bool)
    m = np.asarray(m)
    if single and m.ndim == 0:
        m = m[None]
    if m.dtype != bool or m.shape != (n,):
        raise ContentError(f"mask of view {name!r} must be bool of shape ({n},), got {m.dtype} {m.shape}")
    bad = ~np.isfinite(f).all(axis=1) & m
    if bad.any():
        raise ContentError(f"view {name!r}: {int(bad.sum())} present rows contain NaN/inf ({_which(bad, ids)}; "
                           "mask them out if the view is missing)")
    f = f.copy()
    f[~m] = 0.0
    return f, m


def normalize_features(features: Features, masks: Masks | None, views: Mapping[str, int],
                       ids: Sequence[Any] | None = None, allow_empty_rows: bool = False,
                       ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """Validate a feature dict against a model's views and fill absent views.

    Args:
        features: View name -> (n, dim) or (dim,) array.
        masks: View name -> (n,) bool presence mask; default: present where given.
        views: The views the model expects, name -> dim.
        ids: Optional item ids (n,), named in error messages.
        allow_empty_rows: Accept items with no view present (all their masks False).

    Returns:
        (features, masks, n) with every expected view present as float32 (n, dim);
        absent views are zero *and* masked out.

    Raises:
        FeatureMismatchError: An unknown view, or a view with the wrong dim.
        ContentError: No views at all, inconsistent row counts, bad masks, or NaN/inf in
            a present row.
    """
    masks = _check_view_names(features, masks, views)
    feats, single, n = _as_matrices(features, views)
    out_masks: dict[str, np.ndarray] = {}
    for name, dim in views.items():
        if name not in feats:
            feats[name] = np.zeros((n, dim), np.float32)
            out_masks[name] = np.zeros(n, bool)
            continue
        feats[name], out_masks[name] = _masked_view(name, feats[name], masks.get(name), n, single, ids)
    none = ~np.any(np.stack(list(out_masks.values())), axis=0) if n else np.zeros(0, bool)
    if none.any() and not allow_empty_rows:
        raise ContentError(f"{int(none.sum())} items have no view present at all ({_which(none, ids)})")
    return feats, out_masks, n


def fingerprint_features(features: Features, masks: Masks | None = None,
                         ids: np.ndarray | None = None) -> str:
    """SHA-256 over ids, views (sorted by name) and masks: the training-data fingerprint."""
    h = hashlib.sha256()
    if ids is not None:
        h.update("\n".join(str(i) for i in ids).encode())
    for name in sorted(features):
        h.update(name.encode())
        h.update(np.ascontiguousarray(features[name], dtype=np.float32).tobytes())
        if masks and name in masks:
            h.update(np.ascontiguousarray(masks[name], dtype=bool).tobytes())
    return h.hexdigest()


def select_rows(features: Features, masks: Masks | None, rows: np.ndarray,
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Take rows ``rows`` of every view and mask."""
    f = {k: np.asarray(v)[rows] for k, v in features.items()}
    m = {k: np.asarray(v)[rows] for k, v in (masks or {}).items()}
    return f, m


def save_features_npz(path: str, ids: np.ndarray, features: Features, masks: Masks | None = None,
                      extractor_ids: Mapping[str, str] | None = None) -> None:
    """Write a feature table as .npz: ``ids``, one array per view, ``mask__<view>``, ``extractor__<view>``."""
    arrays: dict[str, np.ndarray] = {"ids": np.asarray([str(i) for i in ids])}
    for k, v in features.items():
        arrays[k] = np.asarray(v, np.float32)
        if masks and k in masks:
            arrays[f"mask__{k}"] = np.asarray(masks[k], bool)
        if extractor_ids and k in extractor_ids:
            arrays[f"extractor__{k}"] = np.asarray(extractor_ids[k])
    np.savez(path, **arrays)


def load_features_npz(path: str) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], list[ViewSpec]]:
    """Read a feature table written by :func:`save_features_npz`.

    Returns:
        (ids, features, masks, view specs).

    Raises:
        ContentError: Unreadable file, no ``ids``, or duplicate ids.
    """
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ContentError(f"{path}: cannot read feature table: {exc}") from exc
    if "ids" not in z.files:
        raise ContentError(f"{path}: feature table has no 'ids' array")
    ids = np.asarray(z["ids"]).astype(str)
    if len(set(ids.tolist())) != len(ids):
        raise ContentError(f"{path}: duplicate item ids in the feature table")
    feats = {k: z[k] for k in z.files if k != "ids" and "__" not in k}
    masks = {k[6:]: z[k] for k in z.files if k.startswith("mask__")}
    specs = [ViewSpec(k, int(v.shape[1]), str(z[f"extractor__{k}"]) if f"extractor__{k}" in z.files else "unknown")
             for k, v in feats.items()]
    return ids, feats, masks, specs
