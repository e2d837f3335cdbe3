"""Where the CB2CF gap is: preference direction versus popularity (vector norm).

On the benchmark's own split (``cb2cf.bench.benchmark.prepare_split``), every row maps content
to CF vectors and is scored like the benchmark (cold items ranked for each user by
``U @ p``; Recall@20 on the cold validation and test items). The rows split a predicted
vector into its direction and its norm:

* ``ridge``: the benchmark's ridge baseline (alpha picked on validation);
* ``ridge direction only``: the same vectors scaled to unit norm (no popularity);
* ``direction x norm from true popularity (leaky)``: each cold item's norm set from its
  real interaction count (``norm ~ a + b*log1p(count)``, fit on warm items): what a
  model would reach if it knew how popular the item will be;
* ``... blurred to corr rho (simulated)``: the leaky norm with random log-space noise, to
  show how good a popularity prediction the 1.3x target would need;
* ``direction x norm predicted by ...``: the same with the norm predicted from content
  (ridge on the views plus tag counts; gradient-boosted trees);
* ``popularity-weighted ridge``: ridge fit with warm items weighted by log popularity.

Usage::

    python bench/cb2cf_ceiling.py --dataset ../shared/data/ml-latest-small [--cache-dir /tmp/cb2cf-cache]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from cb2cf.bench.benchmark import prepare_split
from cb2cf.bench.methods import select_ridge
from cb2cf.bench.movielens import concat_views
from cb2cf.metrics import rank_metrics
from cb2cf.ridge import ridge_fit as _ridge_fit
from cb2cf.ridge import ridge_predict as _ridge_predict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "cb2cf"))
    a = ap.parse_args()
    t0 = time.time()
    s = prepare_split(a.dataset, seed=a.seed, cache_dir=a.cache_dir)
    rows, U, V = s.rows, s.space.user_vectors, s.space.item_vectors
    truth = {"val": s.R_val, "test": s.R_test}
    pop = {"warm": np.asarray(s.warm_train.matrix.sum(0)).ravel(), "val": np.asarray(s.R_val.sum(0)).ravel(),
           "test": np.asarray(s.R_test.sum(0)).ravel()}
    X = concat_views(s.feats, s.masks)
    tags = pd.read_csv(Path(a.dataset) / "tags.csv", dtype={"movieId": str})
    ids = [str(i) for i in np.concatenate([s.warm_items, s.cold_val, s.cold_test])]
    g = tags.groupby("movieId")
    T = np.log1p(np.stack([g.size().reindex(ids).fillna(0).to_numpy(),
                           g["userId"].nunique().reindex(ids).fillna(0).to_numpy()], 1))
    W, best_alpha = select_ridge(X, s)
    P = _ridge_predict(W, X)
    D = P / np.linalg.norm(P, axis=1, keepdims=True)
    true_norm = np.linalg.norm(V, axis=1)
    A = np.stack([np.ones(len(V)), np.log1p(pop["warm"])], 1)
    coef = np.linalg.lstsq(A, true_norm, rcond=None)[0]
    table: list[tuple[str, dict]] = []

    def add(name: str, vectors: np.ndarray, norm: np.ndarray | None = None) -> None:
        out = {}
        for part in ("val", "test"):
            p = vectors[rows[part]]
            out[part] = rank_metrics(U @ p.T, truth[part])["recall@20"]
            out[f"corr_{part}"] = float(np.corrcoef(norm[rows[part]], np.log1p(pop[part]))[0, 1]) if norm is not None else None
        table.append((name, out))

    add(f"ridge (alpha {best_alpha:g})", P, np.linalg.norm(P, axis=1))
    add("ridge direction only", D)
    leaky = np.zeros(len(X))
    for part in ("val", "test"):  # warm-train holds ~90% of a warm item's interactions; match that scale
        leaky[rows[part]] = coef[0] + coef[1] * np.log1p(0.9 * pop[part])
    add("direction x norm from true popularity (leaky)", D * leaky[:, None], leaky)
    rng = np.random.default_rng(a.seed)
    for rho in (0.8, 0.6):  # the leaky norm blurred with Gaussian noise in log space to correlation rho
        blurred = np.zeros(len(X))
        for part in ("val", "test"):
            lp = np.log1p(0.9 * pop[part])
            zs = (lp - lp.mean()) / lp.std()
            zs = rho * zs + np.sqrt(1 - rho ** 2) * rng.standard_normal(len(zs))
            blurred[rows[part]] = np.maximum(coef[0] + coef[1] * (lp.mean() + lp.std() * zs), 1e-3)
        add(f"direction x norm from true popularity blurred to corr {rho:g} (simulated)", D * blurred[:, None], blurred)
    XT = np.hstack([X, T])
    norm_ridge = Ridge(alpha=10.0).fit(XT[rows["warm"]], true_norm).predict(XT)
    add("direction x norm predicted by ridge (views + tag counts)", D * norm_ridge[:, None], norm_ridge)
    small = np.hstack([T, s.feats["genres"], s.feats["year"]])
    hgb = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=a.seed)
    norm_hgb = hgb.fit(np.hstack([XT, small])[rows["warm"]], true_norm).predict(np.hstack([XT, small]))
    add("direction x norm predicted by boosted trees (views + tag counts)", D * norm_hgb[:, None], norm_hgb)
    w = np.log1p(pop["warm"]) / np.log1p(pop["warm"]).mean()
    add(f"popularity-weighted ridge (alpha {best_alpha:g})", _ridge_predict(_ridge_fit(X[rows["warm"]], V, best_alpha, w), X))

    base = table[0][1]
    print("| vectors | recall@20 val | recall@20 test | test / ridge | corr(norm, log pop) test |")
    print("|---|---|---|---|---|")
    for name, r in table:
        c = "" if r["corr_test"] is None else f"{r['corr_test']:.2f}"
        print(f"| {name} | {r['val']:.4f} | {r['test']:.4f} | {r['test'] / base['test']:.2f}x | {c} |")
    print(f"\n{len(s.cold_val)} cold validation / {len(s.cold_test)} cold test items; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
