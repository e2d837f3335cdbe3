"""The benchmark's numbers for people and tools: ratios, the mean and spread over seeds, tables, JSON.

Over several seeds every metric of every method is reported as mean and standard
deviation (population std over the seeds where the method ran; the paired per-seed
differences of the standing use the sample std, see ``_paired_lead``); a seed where a method
failed is listed with its reason and left out of that method's mean.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

METRIC_KEYS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20", "precision@20")
AUDIENCE_KEYS = ("recall@20", "recall@50", "ndcg@20", "ndcg@50")
NOT_COMPARED = ("random", "most popular (test counts, leaky)", "warm oracle")  # references, not competitors
ORACLE = "warm oracle"


def _competitors(results: dict[str, dict]) -> dict[str, float]:
    """Recall@20 of every method CB2CF competes with (not itself, not the references, not failed rows)."""
    return {n: r["recall@20"] for n, r in results.items()
            if n not in NOT_COMPARED and not n.startswith("CB2CF") and "recall@20" in r}


def ratios(results: dict[str, dict]) -> dict[str, float | str | None]:
    """CB2CF's Recall@20 over the best other method and as a fraction of the warm oracle (one seed)."""
    cb = results.get("CB2CF", {}).get("recall@20")
    others = _competitors(results)
    best = max(others, key=others.get) if others else None
    orc = results.get(ORACLE, {}).get("recall@20")
    return {"best_other_method": best,
            "cb2cf_over_best_other_recall@20": cb / others[best] if cb is not None and best and others[best] else None,
            "cb2cf_fraction_of_oracle_recall@20": cb / orc if cb is not None and orc else None}


def _mean_std(rows: list[dict], keys: tuple[str, ...]) -> dict:
    """Mean and std of ``keys`` over the seeds' rows that did not fail; failures listed."""
    ok = [r for r in rows if "failed" not in r]
    out: dict = {"seeds_ok": len(ok)}
    for k in keys:
        vals = [r[k] for r in ok if k in r]
        if vals:
            out[k] = {"mean": float(np.mean(vals)), "std": float(np.std(vals))}
    failed = [f"seed {r['_seed']}: {r['failed']}" for r in rows if "failed" in r]
    return out | ({"failed": failed} if failed else {})


def summarize(runs: list[dict]) -> dict:
    """Mean and std over the seeds' runs of every method, both tables, plus CB2CF's standing.

    ``runs`` are :func:`cb2cf.bench.benchmark.run_benchmark` results, or ``{"seed", "failed"}``
    for a seed whose split could not be built.
    """
    ok = [r for r in runs if "results" in r]
    out: dict = {"seeds": [r["seed"] for r in runs], "failed_seeds": {r["seed"]: r["failed"] for r in runs
                                                                        if "failed" in r}}
    for table, keys in (("results", METRIC_KEYS), ("results_audience", AUDIENCE_KEYS)):
        names = list(dict.fromkeys(n for r in ok for n in r[table]))
        out[table] = {n: _mean_std([r[table][n] | {"_seed": r["seed"]} for r in ok if n in r[table]], keys)
                      for n in names}
    res = out["results"]
    mean = {n: r["recall@20"]["mean"] for n, r in res.items() if "recall@20" in r}
    others = _competitors({n: {"recall@20": v} for n, v in mean.items()})
    if "CB2CF" in mean and others:
        best = max(others, key=others.get)
        cb, b = res["CB2CF"]["recall@20"], res[best]["recall@20"]
        both = [(r["results"]["CB2CF"]["recall@20"], r["results"][best]["recall@20"]) for r in ok
                if "recall@20" in r["results"].get("CB2CF", {}) and "recall@20" in r["results"].get(best, {})]
        paired = [c / o for c, o in both if o]
        out["standing"] = _paired_lead([c - o for c, o in both]) | {
            "best_other_method": best, "cb2cf_over_best_other_recall@20": cb["mean"] / b["mean"] if b["mean"] else None,
            "cb2cf_over_best_other_per_seed": paired,
            "lead_recall@20": cb["mean"] - b["mean"], "spread_recall@20": cb["std"] + b["std"],
            "ahead_by_more_than_spread": bool(cb["mean"] - b["mean"] > cb["std"] + b["std"]),
            "cb2cf_fraction_of_oracle_recall@20": (cb["mean"] / mean[ORACLE]) if mean.get(ORACLE) else None,
            "seeds_best_of_all": _seeds_best_of_all(ok)}
    return out


def _seeds_best_of_all(runs: list[dict]) -> dict[str, str | None]:
    """Per seed, the method with the highest Recall@20 among CB2CF and its competitors (who won each split)."""
    out: dict[str, str | None] = {}
    for r in runs:
        cands = _competitors(r["results"]) | ({"CB2CF": r["results"]["CB2CF"]["recall@20"]}
                                              if "recall@20" in r["results"].get("CB2CF", {}) else {})
        out[str(r["seed"])] = max(cands, key=cands.get) if cands else None
    return out


def _paired_lead(diffs: list[float]) -> dict:
    """CB2CF minus the best other method, seed by seed (the same split): mean, spread, seeds won.

    The seeds' splits differ in difficulty for every method alike; that part of the
    methods' own spread cancels in the per-seed difference. ``paired_spread`` is the
    sample std of the differences (ddof 1; 0 with one seed), ``paired_stderr`` that over
    sqrt(n). ``ahead_by_more_than_paired_spread`` (mean > sample std, an effect size
    d_z > 1) is a size rule, not a significance test: with 3 seeds it corresponds to a
    one-sided paired t p of about 0.1. ``sign_test_p`` is the one-sided sign-test p of
    the seeds won (3 of 3: 0.125).
    """
    if not diffs:
        return {}
    d = np.asarray(diffs, dtype=float)
    n, won = len(d), int((d > 0).sum())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    return {"paired_lead_recall@20": float(d.mean()), "paired_spread_recall@20": sd,
            "paired_stderr_recall@20": sd / math.sqrt(n), "seeds_won": won, "seeds_compared": n,
            "sign_test_p": sum(math.comb(n, k) for k in range(won, n + 1)) / 2 ** n,
            "ahead_by_more_than_paired_spread": bool(n > 1 and d.mean() > sd)}


def _cell(v: object) -> str:
    if isinstance(v, dict):
        return f"{v['mean']:.4f} ± {v['std']:.4f}"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _rows(table: dict[str, dict], keys: tuple[str, ...], count: str) -> list[str]:
    lines = ["| method | " + " | ".join(keys) + f" | {count} |", "|" + "---|" * (len(keys) + 2)]
    for name, r in table.items():
        if "failed" in r and not any(k in r for k in keys):
            lines.append(f"| {name} | failed: {r['failed']} |" + " |" * len(keys))
            continue
        n = r.get("users", r.get("seeds_ok", ""))
        lines.append(f"| {name} | " + " | ".join(_cell(r.get(k, "-")) for k in keys) + f" | {n} |")
    return lines


def format_table(res: dict) -> str:
    """Markdown tables of one run (:func:`run_benchmark`) or of a summary over seeds (:func:`summarize`)."""
    multi = "standing" in res or "seeds" in res and isinstance(res["seeds"], list)
    count = "seeds" if multi else "users"
    lines = _rows(res["results"], METRIC_KEYS, count)
    st = res.get("standing") if multi else res.get("ratios")
    if st and st.get("cb2cf_over_best_other_recall@20") is not None:
        lines += ["", f"CB2CF Recall@20 / best other method ({st['best_other_method']}): "
                      f"{st['cb2cf_over_best_other_recall@20']:.2f}x; CB2CF / warm oracle: "
                      f"{st['cb2cf_fraction_of_oracle_recall@20'] or 0:.2f}"]
        if multi:
            lines.append(f"lead {st['lead_recall@20']:+.4f} vs spread (sum of stds) {st['spread_recall@20']:.4f}: "
                         f"{'ahead' if st['ahead_by_more_than_spread'] else 'not ahead'} by more than the spread; "
                         "per seed (same split): " + ", ".join(f"{x:.2f}x" for x in st["cb2cf_over_best_other_per_seed"]))
            if "paired_lead_recall@20" in st:
                lines.append(f"paired (per-seed difference on the same split): lead {st['paired_lead_recall@20']:+.4f}, "
                             f"spread (sample std) {st['paired_spread_recall@20']:.4f}, stderr "
                             f"{st.get('paired_stderr_recall@20', 0.0):.4f}, seeds won {st['seeds_won']}/"
                             f"{st['seeds_compared']} (sign test p {st.get('sign_test_p', 1.0):.3f}): "
                             f"{'ahead' if st['ahead_by_more_than_paired_spread'] else 'not ahead'} by more than "
                             "the paired spread")
            wins = st.get("seeds_best_of_all") or {}
            if wins:
                lines.append("best method per seed (all methods): "
                             + ", ".join(f"seed {k} {v or 'none (every method failed)'}" for k, v in wins.items()))
    lines += ["", "Audience (all users ranked for each cold test item: who to seed it to)", ""]
    lines += _rows(res["results_audience"], AUDIENCE_KEYS, "seeds" if multi else "items")
    if multi and res.get("failed_seeds"):
        lines += ["", "Failed seeds: " + "; ".join(f"{s}: {r}" for s, r in res["failed_seeds"].items())]
    return "\n".join(lines)


def write_json(res: dict, path: str | Path) -> None:
    """Write the results (without model objects) as JSON."""

    def clean(o: object) -> object:
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items() if not str(k).startswith("_")}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(clean(res), indent=2, default=str))
