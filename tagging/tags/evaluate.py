"""Labelled-set evaluation of the tagger: labels files, metrics and a report.

A labels file is a TSV with a header naming a ``file`` and a ``label`` column (other
columns are ignored; ``#`` lines and blank lines are skipped). ``file`` is a path,
relative to the TSV's folder unless absolute; ``label`` holds one or more taxonomy
ids separated by ``,`` or ``;``, or free text that a label map (JSON
``{"free text": ["id", ...]}``) turns into ids. Rows whose file is missing, a folder,
an image, or (unless ``include_audio``) audio-only are skipped and counted.

Metrics (:func:`score_items`):

* **top-k accuracy**: an item is a hit when any of its true ids is among the first k
  returned tags;
* **per-category precision / recall**: a category is *predicted* for an item when it
  is the item's top-1 tag or a returned tag with score >= ``threshold`` (0.5). A
  trained head's scores are calibrated so that its per-category held-out threshold
  sits at 0.5 (see :mod:`tagging.tags.heads`), so the same rule applies to head and
  zero-shot categories;
* **confusion of the worst categories**: for the (up to ``worst``) categories with the
  lowest recall below 1, how often each id came out top-1 for the items truly in that
  category.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tagging.errors import LabelsError, TaggingError
from tagging.inputs import MEDIA_EXTENSIONS, caption_text

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".ts", ".3gp"}
AUDIO_EXTENSIONS = MEDIA_EXTENSIONS - VIDEO_EXTENSIONS
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
_SPLIT = re.compile(r"[,;]")


@dataclass
class LabelRow:
    """One evaluable row of a labels file."""

    file: Path
    labels: list[str]
    line: int
    raw: str = ""


@dataclass
class SkippedRow:
    """A row that was not evaluated, and why."""

    file: str
    line: int
    reason: str


@dataclass
class LabelSet:
    """The evaluable rows of a labels file plus the skipped ones."""

    source: str
    rows: list[LabelRow] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)


def _norm(label: str) -> str:
    return " ".join(label.strip().lower().split())


def load_label_map(path: str | Path, ids: Iterable[str]) -> dict[str, list[str]]:
    """Read a label map ``{"free text label": ["taxonomy_id", ...]}`` (keys matched case-insensitively).

    Keys starting with ``_`` (e.g. ``"_comment"``) are ignored.

    Raises:
        LabelsError: The file is unreadable, not a JSON object, or maps to unknown ids.
    """
    known = set(ids)
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise LabelsError(str(path), f"cannot read label map: {exc}") from exc
    if not isinstance(raw, dict):
        raise LabelsError(str(path), "label map must be a JSON object of label -> [taxonomy ids]")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        targets = [value] if isinstance(value, str) else value
        if not isinstance(targets, list) or not targets:
            raise LabelsError(str(path), f"label {key!r}: expected a non-empty list of taxonomy ids")
        unknown = [t for t in targets if t not in known]
        if unknown:
            raise LabelsError(str(path), f"label {key!r} maps to unknown taxonomy ids {unknown}")
        out[_norm(key)] = [str(t) for t in targets]
    return out


def resolve_labels(raw: str, ids: Iterable[str], label_map: dict[str, list[str]] | None = None) -> list[str]:
    """Turn a label cell into taxonomy ids (label map first, then ``,``/``;``-separated ids).

    Raises:
        ValueError: A part is neither a mapped label nor a taxonomy id (the message names it).
    """
    known, label_map = set(ids), label_map or {}
    whole = _norm(raw)
    if whole in label_map:
        return list(label_map[whole])
    out: list[str] = []
    for part in filter(None, (_norm(p) for p in _SPLIT.split(raw))):
        found = label_map.get(part) or ([part] if part in known else None)
        if found is None:
            raise ValueError(f"label {part!r} is not a taxonomy id and not in the label map")
        out.extend(i for i in found if i not in out)
    if not out:
        raise ValueError("empty label")
    return out


def _skip_reason(path: Path, include_audio: bool) -> str | None:
    if not path.exists():
        return "file not found"
    if path.is_dir():
        return "a directory"
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "an image, not a video"
    if ext in AUDIO_EXTENSIONS and not include_audio:
        return "audio only (pass include_audio / --include-audio to evaluate it)"
    if ext not in MEDIA_EXTENSIONS:
        return f"not a media file the pipeline accepts ({ext or 'no extension'})"
    return None


def read_labels(
    path: str | Path, ids: Iterable[str], label_map: dict[str, list[str]] | None = None, include_audio: bool = False
) -> LabelSet:
    """Read a labels TSV into evaluable rows and skipped rows.

    Args:
        path: The TSV file.
        ids: The taxonomy's category ids.
        label_map: Free-text label -> ids (see :func:`load_label_map`).
        include_audio: Evaluate audio-only files too (skipped by default).

    Returns:
        The rows, files resolved against the TSV's folder.

    Raises:
        LabelsError: The file is unreadable, has no file/label columns, or a row's label
            maps to no taxonomy id (the error names ``file:line``).
    """
    path = Path(path)
    ids = list(ids)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise LabelsError(str(path), f"cannot read labels file: {exc}") from exc
    out = LabelSet(str(path))
    body = [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]
    if not body:
        return out
    header = [h.strip().lower() for h in next(csv.reader([body[0][1]], delimiter="\t"))]
    if "file" in header and "label" in header:
        fcol, lcol, body = header.index("file"), header.index("label"), body[1:]
    else:
        fcol, lcol = 0, 1
    for n, line in body:
        cells = next(csv.reader([line], delimiter="\t"))
        if len(cells) <= max(fcol, lcol):
            raise LabelsError(f"{path}:{n}", f"expected a file and a label column, got {len(cells)} column(s)")
        name, raw = cells[fcol].strip(), cells[lcol].strip()
        file = Path(name) if Path(name).is_absolute() else path.parent / name
        reason = _skip_reason(file, include_audio)
        if reason is not None:
            out.skipped.append(SkippedRow(name, n, reason))
            continue
        try:
            labels = resolve_labels(raw, ids, label_map)
        except ValueError as exc:
            raise LabelsError(f"{path}:{n}", f"{name}: {exc}") from exc
        out.rows.append(LabelRow(file, labels, n, raw))
    return out


# ------------------------------------------------------------------ metrics
@dataclass
class EvalItem:
    """One evaluated item: its true ids and the ranked tags the tagger returned."""

    file: str
    labels: list[str]
    ranked: list[tuple[str, float]]


@dataclass
class EvalReport:
    """Accuracy, per-category precision/recall and confusion over a labelled set."""

    n_items: int
    top1: float
    top3: float
    per_category: dict[str, dict[str, Any]]
    confusion: dict[str, dict[str, int]]
    items: list[EvalItem] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    threshold: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        d = asdict(self)
        d["items"] = [{"file": i.file, "labels": i.labels, "top3": [[t, round(s, 4)] for t, s in i.ranked[:3]]} for i in self.items]
        return d

    def table(self, show_items: bool = True) -> str:
        """The report as markdown: summary, per-category table, confusion, per-item top-3."""
        n = self.n_items
        lines = [
            f"items evaluated: {n}, skipped: {len(self.skipped)}",
            "",
            "| metric | value |",
            "|---|---|",
            f"| top-1 accuracy | {self.top1:.3f} ({round(self.top1 * n)}/{n}) |",
            f"| top-3 accuracy | {self.top3:.3f} ({round(self.top3 * n)}/{n}) |",
            "",
            f"Per category (predicted = top-1, or score >= {self.threshold}):",
            "",
            "| category | support | predicted | precision | recall |",
            "|---|---|---|---|---|",
        ]
        fmt = lambda v: "-" if v is None else f"{v:.2f}"
        for cid, m in sorted(self.per_category.items(), key=lambda kv: (-kv[1]["support"], kv[0])):
            lines.append(f"| {cid} | {m['support']} | {m['predicted']} | {fmt(m['precision'])} | {fmt(m['recall'])} |")
        if self.confusion:
            lines += ["", "Confusion of the worst categories (true -> top-1 predicted, counts):", "", "| true | top-1 predicted |", "|---|---|"]
            for true, preds in self.confusion.items():
                lines.append(f"| {true} | {', '.join(f'{p} x{c}' for p, c in preds.items())} |")
        if show_items and self.items:
            lines += ["", "| file | true | top-3 (score) |", "|---|---|---|"]
            for it in self.items:
                top = ", ".join(f"{t} {s:.2f}" for t, s in it.ranked[:3]) or "(none)"
                lines.append(f"| {it.file} | {', '.join(it.labels)} | {top} |")
        if self.skipped:
            reasons = Counter(s.reason for s in self.skipped)
            lines += ["", "skipped rows: " + "; ".join(f"{c} x {r}" for r, c in reasons.most_common())]
        return "\n".join(lines)


def score_items(items: list[EvalItem], threshold: float = 0.5, worst: int = 5, skipped: list[SkippedRow] | None = None) -> EvalReport:
    """Compute the report's numbers from true labels and ranked tags.

    Args:
        items: True ids and ranked ``(id, score)`` tags per item.
        threshold: Score at or above which a returned tag counts as predicted (top-1 always does).
        worst: Categories shown in the confusion table (lowest recall first, recall < 1 only).
        skipped: Rows that were not evaluated, carried into the report.

    Returns:
        The report; accuracies are 0.0 for an empty set.
    """
    n = len(items)
    hits1 = hits3 = 0
    tp: Counter[str] = Counter()
    support: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    top1_of: dict[str, Counter[str]] = {}
    for it in items:
        ranked_ids = [t for t, _ in it.ranked]
        truth = set(it.labels)
        hits1 += bool(truth & set(ranked_ids[:1]))
        hits3 += bool(truth & set(ranked_ids[:3]))
        pred = {t for i, (t, s) in enumerate(it.ranked) if i == 0 or s >= threshold}
        for t in pred:
            predicted[t] += 1
            tp[t] += t in truth
        for t in truth:
            support[t] += 1
            top1_of.setdefault(t, Counter())[ranked_ids[0] if ranked_ids else "(none)"] += 1
    per_category: dict[str, dict[str, Any]] = {}
    for cid in sorted(set(support) | set(predicted)):
        per_category[cid] = {
            "support": support[cid],
            "predicted": predicted[cid],
            "true_positives": tp[cid],
            "precision": round(tp[cid] / predicted[cid], 4) if predicted[cid] else None,
            "recall": round(tp[cid] / support[cid], 4) if support[cid] else None,
        }
    imperfect = [c for c in support if per_category[c]["recall"] < 1.0]
    ranked_cats = sorted(imperfect, key=lambda c: (per_category[c]["recall"], -support[c], c))
    confusion = {c: dict(top1_of[c].most_common()) for c in ranked_cats[:worst]}
    return EvalReport(
        n_items=n,
        top1=hits1 / n if n else 0.0,
        top3=hits3 / n if n else 0.0,
        per_category=per_category,
        confusion=confusion,
        items=items,
        skipped=list(skipped or []),
        threshold=threshold,
    )


class _Analyzer(Protocol):
    def analyze(self, path: Any, video_id: Any = None, caption: Any = None, metadata: Any = None) -> Any: ...


def evaluate(
    pipeline: _Analyzer,
    rows: LabelSet | list[LabelRow],
    captions: dict[str, Any] | None = None,
    threshold: float = 0.5,
    worst: int = 5,
) -> EvalReport:
    """Run the pipeline over labelled rows and score its tags.

    Args:
        pipeline: Anything with ``analyze(path, caption=...)`` returning an object with ``.tags``
            (a :class:`~tagging.pipeline.Pipeline`, or a fake in tests).
        rows: A :class:`LabelSet` (its skipped rows are reported) or a list of rows.
        captions: Caption per file name (or per path as written in the labels file).
        threshold: See :func:`score_items`.
        worst: See :func:`score_items`.

    Returns:
        The report. Files the pipeline fails on are reported as skipped with the error.
    """
    label_set = rows if isinstance(rows, LabelSet) else LabelSet("<rows>", list(rows))
    captions = captions or {}
    skipped = list(label_set.skipped)
    items: list[EvalItem] = []
    for row in label_set.rows:
        caption = captions.get(row.file.name, captions.get(str(row.file)))
        try:
            result = pipeline.analyze(row.file, caption=caption)
        except TaggingError as exc:
            logger.warning("skipping %s: %s", row.file, exc)
            skipped.append(SkippedRow(str(row.file), row.line, f"{exc.error_class}: {exc.reason}"))
            continue
        ranked = [(t.id, float(t.score)) for t in result.tags]
        items.append(EvalItem(row.file.name, row.labels, ranked))
        logger.info("%s [%s] caption=%r -> %s", row.file.name, ",".join(row.labels), caption_text(caption)[:40], ranked[:3])
    return score_items(items, threshold, worst, skipped)
