"""Metrics, table, JSON and plot of the closed-loop benchmark (:mod:`cb2cf.bench.simulate`).

* ``first_pool_precision``: engaged users / users shown, over every item's first pool;
* ``audience_recall``: per item, the share of its true audience (held-out raters) shown it
  once the ladder ends, averaged over items with an audience;
* ``impressions_per_engagement``: impressions / engaged impressions;
* ``promoted_precision``: of the items promoted after the first pool (for the policies without
  the rule: the items the rule would promote from their first pools), the share truly in the
  top decile of engagement (summed engagement weight of all their held-out raters);
* ``exposure_gini``: Gini coefficient of impressions across the new items (0 = equal);
* ``niche_reach``: ``audience_recall`` over the least popular half of the items (by audience size);
* ``slate_tag_coverage``: per user shown at least one new item, the share of all tags (genres)
  among the new items shown to them, averaged over users.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cb2cf.bench.simulate import POLICIES, Trace, World

METRICS = ("first_pool_precision", "audience_recall", "impressions_per_engagement", "promoted_precision",
           "exposure_gini", "niche_reach", "slate_tag_coverage")


def gini(x: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: all equal; -> 1: one takes all)."""
    x = np.sort(np.asarray(x, np.float64))
    n, s = len(x), x.sum()
    if n == 0 or s == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * s))


def metrics(world: World, t: Trace) -> dict[str, float | None]:
    """The benchmark's metrics of one policy's trace."""
    truth = world.W > 0
    size = truth.sum(0)
    has = np.flatnonzero(size > 0)
    recall = (t.E & truth).sum(0) / np.maximum(size, 1)
    niche = has[np.argsort(size[has], kind="stable")[: len(has) // 2]]
    total = world.W.sum(0)
    top = (total >= np.quantile(total, 0.9)) & (total > 0)
    shown = t.E.any(1)
    cover = ((t.E[shown].astype(np.float32) @ world.genres) > 0).sum(1) / max(world.genres.shape[1], 1)
    engaged = int((t.E & truth).sum())
    return {
        "first_pool_precision": t.first_pool[1] / t.first_pool[0] if t.first_pool[0] else None,
        "audience_recall": float(recall[has].mean()) if len(has) else None,
        "impressions_per_engagement": float(t.E.sum() / engaged) if engaged else None,
        "promoted_precision": float(np.mean([top[j] for j in sorted(t.promoted)])) if t.promoted else None,
        "exposure_gini": gini(t.E.sum(0)),
        "niche_reach": float(recall[niche].mean()) if len(niche) else None,
        "slate_tag_coverage": float(cover.mean()) if len(cover) else None,
    }


def result(dataset: str | Path, seed: int, world: World, traces: dict[str, Trace]) -> dict[str, Any]:
    """``{"dataset", "seed", "methods": {policy: {metric: value}}}`` - the JSON written by ``--json``."""
    return {"dataset": str(dataset), "seed": seed, "methods": {p: metrics(world, traces[p]) for p in POLICIES}}


def summary(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Mean and standard deviation over seeds: ``{policy: {metric: {"mean", "std"}}}``."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for p in POLICIES:
        out[p] = {}
        for m in METRICS:
            vals = [r["methods"][p][m] for r in results if r["methods"][p][m] is not None]
            out[p][m] = {"mean": float(np.mean(vals)) if vals else None, "std": float(np.std(vals)) if vals else None}
    return out


def _cell(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def format_table(results: list[dict[str, Any]], budget: dict[str, int] | None = None,
                 extra: dict[str, list[dict[str, float | None]]] | None = None) -> str:
    """Markdown table: one row per policy, mean ± std over the seeds given (plus ``extra`` rows: name -> per-seed
    metrics, e.g. the loop without exploration)."""
    s = summary(results)
    seeds = ", ".join(str(r["seed"]) for r in results)
    lines = [f"Closed-loop cold start on {results[0]['dataset']} (seeds {seeds}; mean ± std over seeds)", "",
             "| policy | " + " | ".join(METRICS) + " |", "|" + "---|" * (len(METRICS) + 1)]
    for p in POLICIES:
        cells = [_cell(s[p][m]["mean"], s[p][m]["std"] if len(results) > 1 else None) for m in METRICS]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    for name, runs in (extra or {}).items():
        cells = []
        for m in METRICS:
            vals = [r[m] for r in runs if r[m] is not None]
            cells.append(_cell(float(np.mean(vals)) if vals else None, float(np.std(vals)) if len(runs) > 1 and vals
                               else None))
        lines.append(f"| *{name}* | " + " | ".join(cells) + " |")
    if budget:
        lines += ["", "impressions per policy: " + ", ".join(f"{k} {v}" for k, v in budget.items())]
    return "\n".join(lines)


def write_json(res: dict[str, Any], path: str | Path) -> None:
    """Write one result (or a seed summary) as JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(res, indent=2))


def plot(traces: dict[str, Trace], path: str | Path, title: str = "") -> Path:
    """Audience reached (mean per-item recall) against impressions spent, one line per policy, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name in POLICIES:
        xs, ys = zip(*([(0, 0.0)] + traces[name].curve))
        ax.plot(xs, ys, marker="o", label=name, linestyle="--" if name == "oracle" else "-")
    ax.set_xlabel("impressions spent on new items")
    ax.set_ylabel("audience reached (mean per-item recall)")
    ax.set_title(title or "closed-loop cold start")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    plt.close(fig)
    return out
