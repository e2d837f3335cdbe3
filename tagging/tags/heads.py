"""Trainable tag heads: a linear probe on the fused feature vector, per category.

A :class:`TagHead` is one logistic regression per category that has labelled
examples, over the pipeline's fused vector (``VideoResult.fused``). Training
(:func:`train_head`) holds out a seeded, stratified-where-possible part of the
labelled items, fits on the rest and calibrates each category's decision threshold
on the held-out part (the threshold that maximises F1; ``default_threshold`` when the
held-out part has too few positives of that category).

On disk a head is a directory with ``weights.safetensors`` (``weight`` (k, dim),
``bias`` (k,); never pickle), ``config.json`` (training settings and category order)
and ``manifest.json`` (taxonomy id, feature dim, extractor ids, fused-vector weights,
categories, thresholds, held-out metrics, library versions). :meth:`TagHead.load`
refuses a head trained on another taxonomy, feature size or set of extractors.

The tagger turns a probability ``p`` with threshold ``t`` into a calibrated score
that maps ``t`` to 0.5 (piecewise linear, see :meth:`TagHead.calibrated`), so every
category, head or zero-shot, is "on" at a score of 0.5.
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from tagging.errors import HeadMismatchError, ModelLoadError

logger = logging.getLogger(__name__)

FORMAT = "tagging-tag-head"
FORMAT_VERSION = 1
WEIGHTS, CONFIG, MANIFEST = "weights.safetensors", "config.json", "manifest.json"


@dataclass
class HeadConfig:
    """Training settings of a tag head.

    Attributes:
        holdout: Fraction of labelled items held out to calibrate thresholds and report metrics.
        seed: Seed of the held-out split.
        c: Inverse L2 regularisation strength of each logistic regression (sklearn ``C``).
        min_holdout_positives: Held-out positives a category needs for a calibrated threshold.
        default_threshold: Threshold of a category with too few held-out positives.
        max_iter: Optimiser iterations.
    """

    holdout: float = 0.25
    seed: int = 0
    c: float = 1.0
    min_holdout_positives: int = 2
    default_threshold: float = 0.5
    max_iter: int = 2000


@dataclass
class TagHead:
    """A linear probe per category on the fused vector.

    Attributes:
        categories: Category ids the head has examples of, in weight-row order.
        weight: (k, dim) weights acting on the raw fused vector (standardisation folded in).
        bias: (k,) biases.
        thresholds: Calibrated probability threshold per category.
        taxonomy_id: ``Taxonomy.taxonomy_id`` of the labels.
        feature_dim: Size of the fused vector.
        extractors: Extractor id per modality the fused vectors came from.
        fused_weights: Per-modality block weights of the fused vector, when known.
        metrics: Held-out metrics from training.
        config: Training settings.
    """

    categories: list[str]
    weight: np.ndarray
    bias: np.ndarray
    thresholds: dict[str, float]
    taxonomy_id: str
    feature_dim: int
    extractors: dict[str, str]
    fused_weights: dict[str, float] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    config: HeadConfig = field(default_factory=HeadConfig)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (n, k) for fused vectors ``x`` of shape (n, dim) or (dim,)."""
        x = np.atleast_2d(np.asarray(x, np.float64))
        logits = x @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)
        return (1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))).astype(np.float32)

    def calibrated(self, prob: np.ndarray | float, category: str) -> np.ndarray | float:
        """Map a probability to a score where the category's threshold sits at 0.5.

        Piecewise linear: ``[0, t] -> [0, 0.5]`` and ``[t, 1] -> [0.5, 1]``.
        """
        t = float(np.clip(self.thresholds.get(category, 0.5), 0.01, 0.99))
        p = np.asarray(prob, np.float64)
        out = np.where(p < t, 0.5 * p / t, 0.5 + 0.5 * (p - t) / (1.0 - t))
        return float(out) if out.ndim == 0 else out

    # ------------------------------------------------------------ persistence
    def manifest(self) -> dict[str, Any]:
        """The provenance record written as ``manifest.json``."""
        libs = {}
        for lib in ("numpy", "scikit-learn", "safetensors", "torch"):
            try:
                libs[lib] = metadata.version(lib)
            except metadata.PackageNotFoundError:
                pass
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "taxonomy_id": self.taxonomy_id,
            "feature_dim": self.feature_dim,
            "extractors": self.extractors,
            "fused_weights": self.fused_weights,
            "categories": self.categories,
            "thresholds": self.thresholds,
            "metrics": self.metrics,
            "libraries": libs,
            "python": platform.python_version(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def save(self, directory: str | Path) -> Path:
        """Write weights, config and manifest into ``directory`` (created if needed).

        Returns:
            The directory.
        """
        from safetensors.numpy import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_file(
            {"weight": np.ascontiguousarray(self.weight, np.float32), "bias": np.ascontiguousarray(self.bias, np.float32)},
            str(d / WEIGHTS),
            metadata={"format": FORMAT, "taxonomy_id": self.taxonomy_id},
        )
        config = {"format": FORMAT, "categories": self.categories, "feature_dim": self.feature_dim, "training": asdict(self.config)}
        (d / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        (d / MANIFEST).write_text(json.dumps(self.manifest(), indent=2, default=float) + "\n")
        logger.info("saved tag head (%d categories) to %s", len(self.categories), d)
        return d

    @classmethod
    def load(
        cls,
        directory: str | Path,
        taxonomy_id: str | None = None,
        feature_dim: int | None = None,
        extractors: dict[str, str] | None = None,
        fused_weights: dict[str, float] | None = None,
    ) -> TagHead:
        """Load a head and check it fits the pipeline that will use it.

        Args:
            directory: A directory written by :meth:`save`.
            taxonomy_id: Expected taxonomy id (not checked when None).
            feature_dim: Expected fused-vector size (not checked when None).
            extractors: Expected extractor id per modality (not checked when None).
            fused_weights: Expected fused-vector block weights (checked when both sides know them).

        Returns:
            The head.

        Raises:
            ModelLoadError: Files are missing, unreadable or inconsistent with each other.
            HeadMismatchError: The head was trained for another taxonomy, dim or extractors.
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        d = Path(directory)
        try:
            manifest = json.loads((d / MANIFEST).read_text())
            config = json.loads((d / CONFIG).read_text())
            tensors = load_file(str(d / WEIGHTS))
        except (OSError, ValueError, SafetensorError) as exc:
            raise ModelLoadError(str(d), f"cannot read tag head: {exc}") from exc
        if manifest.get("format") != FORMAT:
            raise ModelLoadError(str(d), f"not a tag head (format {manifest.get('format')!r})")
        try:
            weight, bias = tensors["weight"], tensors["bias"]
            cats = list(manifest["categories"])
            head = cls(
                categories=cats,
                weight=weight,
                bias=bias,
                thresholds={k: float(v) for k, v in manifest["thresholds"].items()},
                taxonomy_id=str(manifest["taxonomy_id"]),
                feature_dim=int(manifest["feature_dim"]),
                extractors=dict(manifest["extractors"]),
                fused_weights=manifest.get("fused_weights"),
                metrics=manifest.get("metrics", {}),
                config=HeadConfig(**config.get("training", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(str(d), f"malformed tag head: {exc!r}") from exc
        if weight.shape != (len(cats), head.feature_dim) or bias.shape != (len(cats),) or config.get("categories") != cats:
            raise ModelLoadError(str(d), f"weights {weight.shape} do not match {len(cats)} categories x dim {head.feature_dim}")
        head.check(taxonomy_id, feature_dim, extractors, fused_weights, source=str(d))
        return head

    def check(
        self,
        taxonomy_id: str | None = None,
        feature_dim: int | None = None,
        extractors: dict[str, str] | None = None,
        fused_weights: dict[str, float] | None = None,
        source: str = "<tag head>",
    ) -> None:
        """Refuse a head that does not fit the given taxonomy, feature size and extractors.

        Raises:
            HeadMismatchError: Naming the first mismatch.
        """
        if taxonomy_id is not None and taxonomy_id != self.taxonomy_id:
            raise HeadMismatchError(source, f"trained on taxonomy {self.taxonomy_id}, pipeline uses {taxonomy_id}")
        if feature_dim is not None and feature_dim != self.feature_dim:
            raise HeadMismatchError(source, f"trained on {self.feature_dim}-d fused vectors, pipeline makes {feature_dim}-d")
        if extractors is not None and extractors != self.extractors:
            raise HeadMismatchError(source, f"trained on extractors {self.extractors}, pipeline uses {extractors}")
        if fused_weights is not None and self.fused_weights is not None and fused_weights != self.fused_weights:
            raise HeadMismatchError(source, f"trained with fused weights {self.fused_weights}, pipeline uses {fused_weights}")


# ------------------------------------------------------------------ training
def split_holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded held-out split of multi-label items, stratified by each item's rarest label.

    An item is held out only if every one of its labels keeps at least one positive in
    the training part, so no category loses all its training examples.

    Args:
        y: (n, C) 0/1 label matrix.
        fraction: Target held-out fraction per stratum.
        seed: Random seed.

    Returns:
        Sorted train and held-out item indices.
    """
    rng = np.random.default_rng(seed)
    counts = y.sum(axis=0).astype(int)
    rarest = np.array([int(np.argmin(np.where(row > 0, counts, np.iinfo(int).max))) if row.any() else -1 for row in y])
    train_left = counts.copy()
    held: list[int] = []
    for group in rng.permutation(np.unique(rarest)):
        members = rng.permutation(np.flatnonzero(rarest == group))
        want = int(fraction * len(members) + 0.5)
        for i in members:
            if want == 0:
                break
            labels = np.flatnonzero(y[i])
            if np.all(train_left[labels] >= 2):
                train_left[labels] -= 1
                held.append(int(i))
                want -= 1
    held_idx = np.array(sorted(held), dtype=int)
    train_idx = np.setdiff1d(np.arange(len(y)), held_idx)
    return train_idx, held_idx


def calibrate_threshold(y: np.ndarray, p: np.ndarray, min_positives: int, default: float) -> tuple[float, bool]:
    """The probability threshold that maximises F1 on held-out labels.

    Candidates are midpoints between consecutive distinct probabilities; ties go to the
    candidate closest to 0.5.

    Returns:
        ``(threshold, calibrated)``; ``(default, False)`` with fewer than ``min_positives``
        positives or no negatives.
    """
    y = np.asarray(y).astype(bool)
    if y.sum() < max(1, min_positives) or y.all():
        return default, False
    u = np.unique(p)
    cands = np.concatenate([[u[0] - 1e-6], (u[:-1] + u[1:]) / 2]) if len(u) > 1 else u - 1e-6
    best, best_t = -1.0, default
    for t in cands:
        f1 = _f1(y, p >= t)
        if f1 > best + 1e-12 or (abs(f1 - best) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best, best_t = f1, float(t)
    return float(np.clip(best_t, 0.0, 1.0)), True


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float(np.sum(y & pred))
    denom = float(np.sum(y) + np.sum(pred))
    return 2 * tp / denom if denom else 0.0


def _fit_probe(x: np.ndarray, y: np.ndarray, config: HeadConfig) -> tuple[np.ndarray, float]:
    """Fit one standardised logistic regression; return weights/bias on the raw features."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0)
    clf = LogisticRegression(C=config.c, class_weight="balanced", max_iter=config.max_iter)
    clf.fit((x - mean) / std, y)
    w = clf.coef_[0] / std
    return w, float(clf.intercept_[0] - w @ mean)


def _calibrate_category(head: TagHead, cid: str, truth01: np.ndarray, prob: np.ndarray, train_positives: int,
                        config: HeadConfig) -> dict[str, Any]:
    """Set one category's threshold from its held-out scores and return its held-out report."""
    t, calibrated = calibrate_threshold(truth01, prob, config.min_holdout_positives, config.default_threshold)
    head.thresholds[cid] = t
    pred = prob >= t
    truth = truth01.astype(bool)
    tp = int(np.sum(pred & truth))
    return {
        "threshold": round(t, 4),
        "calibrated": calibrated,
        "train_positives": train_positives,
        "holdout_positives": int(truth.sum()),
        "precision": round(tp / int(pred.sum()), 4) if pred.any() else None,
        "recall": round(tp / int(truth.sum()), 4) if truth.any() else None,
    }


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    categories: list[str],
    taxonomy_id: str,
    extractors: dict[str, str],
    fused_weights: dict[str, float] | None = None,
    config: HeadConfig | None = None,
) -> TagHead:
    """Fit a tag head on fused vectors and calibrate its thresholds on a held-out split.

    The head keeps the model fitted on the training part (so thresholds and metrics
    describe the model that is saved); categories with no positive or no negative
    training example are left out and stay zero-shot in the tagger.

    Args:
        x: (n, dim) fused vectors.
        y: (n, C) 0/1 labels, columns in ``categories`` order (the taxonomy's ids).
        categories: Category id of each column of ``y``.
        taxonomy_id: Taxonomy the labels use.
        extractors: Extractor id per modality that produced ``x``.
        fused_weights: Per-modality block weights of the fused vector.
        config: Training settings.

    Returns:
        The trained head, with held-out metrics in ``head.metrics``.

    Raises:
        ValueError: Shapes disagree, or no category has both positive and negative examples.
    """
    config = config or HeadConfig()
    x = np.asarray(x, np.float32)
    y = (np.asarray(y) > 0).astype(np.int8)
    if x.ndim != 2 or y.shape != (x.shape[0], len(categories)):
        raise ValueError(f"x {x.shape} and y {y.shape} do not match {len(categories)} categories")
    train, held = split_holdout(y, config.holdout, config.seed)
    pos = y[train].sum(axis=0)
    cols = [c for c in range(len(categories)) if 0 < pos[c] < len(train)]
    if not cols:
        raise ValueError("no category has both positive and negative training examples")
    fits = [_fit_probe(x[train], y[train, c], config) for c in cols]
    weight = np.array([w for w, _ in fits], np.float32).reshape(len(cols), x.shape[1])
    bias = np.array([b for _, b in fits], np.float32)
    head = TagHead([categories[c] for c in cols], weight, bias, {}, taxonomy_id, int(x.shape[1]), dict(extractors), fused_weights,
                   config=config)
    probs = head.predict_proba(x[held]) if len(held) else np.zeros((0, len(cols)), np.float32)
    per_cat = {categories[c]: _calibrate_category(head, categories[c], y[held, c], probs[:, j], int(pos[c]), config)
               for j, c in enumerate(cols)}
    head.metrics = {"n_train": len(train), "n_holdout": len(held), "categories": per_cat, **_holdout_accuracy(head, probs, y[held], cols)}
    logger.info("trained tag head on %d items (%d held out), %d categories", len(train), len(held), len(cols))
    return head


def _holdout_accuracy(head: TagHead, probs: np.ndarray, y: np.ndarray, cols: list[int]) -> dict[str, Any]:
    """Top-1 accuracy of the head's calibrated scores on held-out items that have a head category."""
    if not len(probs):
        return {"holdout_top1": None, "holdout_items_scored": 0}
    scores = np.stack([head.calibrated(probs[:, j], cid) for j, cid in enumerate(head.categories)], axis=1)
    truth = y[:, cols].astype(bool)
    keep = truth.any(axis=1)
    if not keep.any():
        return {"holdout_top1": None, "holdout_items_scored": 0}
    top = scores[keep].argmax(axis=1)
    hits = truth[keep][np.arange(int(keep.sum())), top]
    return {"holdout_top1": round(float(hits.mean()), 4), "holdout_items_scored": int(keep.sum())}
