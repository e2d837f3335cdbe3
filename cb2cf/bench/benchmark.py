"""The cold-start benchmark on a MovieLens "latest" directory.

Protocol (seeded by ``seed``):

1. Every rated movie is an item; ratings are implicit positives (binary). Warm movies
   whose every rating falls in the warm validation split have no vector in the CF
   space; they are left out and counted (``warm_items_without_train_interactions``).
2. 20% of items are held out as *cold*; cold items are split 50/50 into validation and
   test items. Warm interactions are split 90/10 (random) into train and validation.
3. The CF space is ALS (``implicit``) on the warm-train interactions.
4. Every method scores the cold *test* items for each user of the space with >= 1
   cold-test interaction; items are ranked among the cold test items only.
   Metrics: Recall@10/20, NDCG@10/20, Precision@20 (see :mod:`cb2cf.metrics`).
   Audience (the other direction, seeding): for every cold test item with >= 1 user,
   all users of the space are ranked by the same scores; Recall@20/50, NDCG@20/50.
5. Cold *validation* items are used for model selection only: ridge alpha, kNN
   neighbourhood size, CB2CF early stopping.

Methods: random; most popular (counts over the cold-test interactions themselves, a
leaky reference: no cold-start method can know them); content kNN (a cold item's score
for a user = sum of its cosine similarity to the user's warm-train items among its k
nearest warm items); ridge (content -> CF vector, scored with the user vectors);
CB2CF; warm oracle (ALS trained on warm-train + all cold interactions; its own user and
item vectors: the ceiling). The audience table adds most active users (warm-train counts).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cb2cf.bench.movielens import concat_views, load_movielens, movie_views
from cb2cf.features import ViewSpec, select_rows
from cb2cf.interactions import Interactions, to_matrix
from cb2cf.metrics import audience_metrics, rank_metrics
from cb2cf.model import CB2CF
from cb2cf.ridge import ridge_fit as _ridge_fit  # noqa: F401 - re-exported (bench/cb2cf_ceiling.py)
from cb2cf.ridge import ridge_predict as _ridge_predict
from cb2cf.ridge import select_ridge_alpha
from cb2cf.space import CFSpace, SpaceConfig, train_space
from cb2cf.train import ItemSet, TrainConfig, train_cb2cf

logger = logging.getLogger(__name__)

METRIC_KEYS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20", "precision@20")
AUDIENCE_KS = (20, 50)
AUDIENCE_KEYS = ("recall@20", "recall@50", "ndcg@20", "ndcg@50")


def select_ridge(X: np.ndarray, split: Split, alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0),
                 ) -> tuple[np.ndarray, float]:
    """The ridge baseline: content rows of ``X`` -> CF vectors, alpha picked on cold validation Recall@20.

    Returns:
        (weights incl. intercept row, alpha).
    """
    rows, U = split.rows, split.space.user_vectors

    def val_recall(alpha: float, W: np.ndarray) -> float:
        return rank_metrics(U @ _ridge_predict(W, X[rows["val"]]).T, split.R_val)["recall@20"]

    W, best_a, _ = select_ridge_alpha(X[rows["warm"]], split.space.item_vectors, alphas, val_recall)
    return W, best_a


def _knn_scores(R_warm: sp.csr_matrix, Xw: np.ndarray, Xc: np.ndarray, k: int) -> np.ndarray:
    S = Xc @ Xw.T  # (n_cold, n_warm) cosine (rows are unit-norm)
    if k < S.shape[1]:
        thr = -np.partition(-S, k - 1, axis=1)[:, k - 1:k]
        S = np.where(S >= thr, S, 0.0)
    return np.asarray(R_warm @ S.T)  # (n_users, n_cold)


@dataclass
class Split:
    """Everything the benchmark's methods see: the seeded split, the warm CF space and the views."""

    users: np.ndarray
    warm_items: np.ndarray
    cold_val: np.ndarray
    cold_test: np.ndarray
    warm_train: Interactions  # users x warm items, binary
    R_val: sp.csr_matrix  # users x cold validation items
    R_test: sp.csr_matrix  # users x cold test items
    space: CFSpace
    feats: dict[str, np.ndarray]  # rows: warm items, then cold validation, then cold test
    masks: dict[str, np.ndarray]
    specs: list[ViewSpec]
    oracle_interactions: pd.DataFrame  # warm-train + every cold interaction (for the ceiling)
    space_config: SpaceConfig
    report: dict
    warm_metrics: dict
    seconds: dict[str, float]

    @property
    def rows(self) -> dict[str, np.ndarray]:
        """Row indices of the feature matrices for ``warm``, ``val`` and ``test`` items."""
        nw, nv = len(self.warm_items), len(self.cold_val)
        return {"warm": np.arange(nw), "val": np.arange(nw, nw + nv),
                "test": np.arange(nw + nv, nw + nv + len(self.cold_test))}

    def item_set(self, part: str) -> ItemSet:
        """The :class:`ItemSet` of ``warm``, ``val`` or ``test`` items (features, masks, interactions)."""
        ids = {"warm": self.warm_items, "val": self.cold_val, "test": self.cold_test}[part]
        R = {"warm": self.warm_train.matrix, "val": self.R_val, "test": self.R_test}[part]
        f, m = select_rows(self.feats, self.masks, self.rows[part])
        return ItemSet(ids, f, m, R)


def prepare_split(dataset: str | Path, seed: int = 0, cold_frac: float = 0.2, factors: int = 64,
                  cache_dir: str | Path | None = None) -> Split:
    """Steps 1-4 of the protocol: read, split, train the warm ALS space, build the views.

    Raises:
        ContentError, InteractionLogError: Malformed dataset.
    """
    ratings, movies, tags, report = load_movielens(dataset)
    rng = np.random.default_rng(seed)
    items = np.array(sorted(ratings["item_id"].unique()))
    perm = rng.permutation(len(items))
    n_cold = int(round(cold_frac * len(items)))
    cold = items[perm[:n_cold]]
    cold_val, cold_test = cold[: n_cold // 2], cold[n_cold // 2:]
    is_cold = ratings["item_id"].isin(set(cold))
    warm_df = ratings.loc[~is_cold]
    wmask = rng.random(len(warm_df)) < 0.9
    warm_train, warm_val = warm_df.loc[wmask], warm_df.loc[~wmask]
    users = np.array(sorted(warm_train["user_id"].unique()))
    warm_items = np.array(sorted(warm_train["item_id"].unique()))
    # warm movies whose every rating fell in warm validation get no vector in the space: counted, left out
    report = dict(report, rated_items=int(len(items)),
                  warm_items_without_train_interactions=int(len(items) - n_cold - len(warm_items)))
    scfg = SpaceConfig(factors=factors, seed=seed)
    t0 = time.time()
    inter = to_matrix(warm_train, users, warm_items, binary=True)
    space = train_space(inter, scfg, space_id="ml-warm-als")
    t_space = time.time() - t0

    def truth(items_: np.ndarray) -> sp.csr_matrix:
        df = ratings.loc[ratings["item_id"].isin(set(items_)) & ratings["user_id"].isin(set(users))]
        return to_matrix(df, users, items_, binary=True).matrix

    # warm sanity: ALS on warm-val interactions, seen items excluded
    wv = warm_val.loc[warm_val["user_id"].isin(set(users)) & warm_val["item_id"].isin(set(warm_items))]
    S_w = space.user_vectors @ space.item_vectors.T
    S_w[inter.matrix.nonzero()] = -np.inf
    warm_metrics = rank_metrics(S_w, to_matrix(wv, users, warm_items, binary=True).matrix)
    t0 = time.time()
    feats, masks, specs = movie_views(movies, tags, np.concatenate([warm_items, cold_val, cold_test]), cache_dir)
    t_feat = time.time() - t0
    full = ratings.loc[ratings["item_id"].isin(set(warm_items) | set(cold))]
    full = full.loc[~full.index.isin(warm_val.index) & full["user_id"].isin(set(users))]
    return Split(users, warm_items, cold_val, cold_test, inter, truth(cold_val).tocsr(), truth(cold_test).tocsr(),
                 space, feats, masks, specs, full, scfg, report, warm_metrics,
                 {"space": t_space, "features": t_feat})


class _Table:
    """The benchmark's two result tables, filled method by method (rows keep their order)."""

    def __init__(self, R_test: sp.csr_matrix) -> None:
        self.R_test = R_test
        self.results: dict[str, dict] = {}  # cold test items ranked for each user
        self.audience: dict[str, dict] = {}  # all users ranked for each cold test item
        self.timings: dict[str, float] = {}

    def score(self, name: str, S_test: np.ndarray, extra: dict | None = None, items: bool = True) -> None:
        """Add the rows of a method from its (n_users, n_cold_test) scores."""
        if items:
            self.results[name] = rank_metrics(S_test, self.R_test) | (extra or {})
        if name != "most popular (test counts, leaky)":  # one score per item: no ranking of users
            self.audience[name] = audience_metrics(S_test, self.R_test, AUDIENCE_KS)


def _score_reference_baselines(table: _Table, split: Split, seed: int) -> None:
    """Random, most popular (leaky: test counts) and most active users (audience only)."""
    R_test = split.R_test
    rng = np.random.default_rng([seed, 1])
    table.score("random", rng.random(R_test.shape))
    pop = np.asarray(R_test.sum(0)).ravel()
    table.score("most popular (test counts, leaky)", np.tile(pop, (R_test.shape[0], 1)))
    active = np.asarray(split.warm_train.matrix.sum(1), dtype=np.float64)  # (n_users, 1) warm-train counts
    table.score("most active users (warm-train counts)", np.tile(active, (1, R_test.shape[1])), items=False)


def _score_knn(table: _Table, split: Split, Xc: np.ndarray) -> None:
    """Content kNN, its neighbourhood size picked on cold validation Recall@20."""
    t0 = time.time()
    sl, R_warm = split.rows, split.warm_train.matrix
    best_k, best = 0, -1.0
    for k in (10, 25, 50, 100, 200, len(split.warm_items)):
        r = rank_metrics(_knn_scores(R_warm, Xc[sl["warm"]], Xc[sl["val"]], k), split.R_val)["recall@20"]
        if r > best:
            best_k, best = k, r
    table.score("content kNN", _knn_scores(R_warm, Xc[sl["warm"]], Xc[sl["test"]], best_k), {"k": best_k})
    table.timings["content kNN"] = time.time() - t0


def _score_ridge(table: _Table, split: Split, Xc: np.ndarray) -> None:
    """Ridge from the concatenated views to the CF vectors (see :func:`select_ridge`)."""
    t0 = time.time()
    W, best_a = select_ridge(Xc, split)
    table.score("ridge", split.space.user_vectors @ _ridge_predict(W, Xc[split.rows["test"]]).T, {"alpha": best_a})
    table.timings["ridge"] = time.time() - t0


def _score_cb2cf(table: _Table, split: Split, tcfg: TrainConfig, show_progress: bool,
                 extra_train_seeds: tuple[int, ...]) -> CB2CF:
    """Train CB2CF on the warm items (early stopping on the cold validation items); returns the model."""
    test, U = split.item_set("test"), split.space.user_vectors
    model, hist = train_cb2cf(split.item_set("warm"), split.space, tcfg, split.item_set("val"), split.specs,
                              show_progress)
    table.timings["cb2cf"] = hist["seconds"]
    P = model.predict(test.features, test.masks)
    table.score("CB2CF", U @ P.T, {"best_epoch": hist["best_epoch"], "train_seconds": round(hist["seconds"], 1)})
    if extra_train_seeds:
        _score_cb2cf_seeds(table, split, tcfg, extra_train_seeds)
    return model


def _score_cb2cf_seeds(table: _Table, split: Split, tcfg: TrainConfig, extra_train_seeds: tuple[int, ...]) -> None:
    """The seed spread of CB2CF itself: retrain with ``extra_train_seeds`` on the same split, add the mean row."""
    test, U, R_test = split.item_set("test"), split.space.user_vectors, split.R_test
    results, audience = table.results, table.audience
    runs = [(results["CB2CF"], audience["CB2CF"])]
    for s in extra_train_seeds:
        m_s, _ = train_cb2cf(split.item_set("warm"), split.space, replace(tcfg, seed=int(s)), split.item_set("val"),
                             split.specs)
        S = U @ m_s.predict(test.features, test.masks).T
        runs.append((rank_metrics(S, R_test), audience_metrics(S, R_test, AUDIENCE_KS)))
    name = f"CB2CF, mean of training seeds {', '.join(str(x) for x in (tcfg.seed, *extra_train_seeds))}"
    results[name] = {k: float(np.mean([r[0][k] for r in runs])) for k in METRIC_KEYS} | {
        "users": results["CB2CF"]["users"], "std_recall@20": float(np.std([r[0]["recall@20"] for r in runs]))}
    audience[name] = {k: float(np.mean([r[1][k] for r in runs])) for k in AUDIENCE_KEYS} | {
        "users": audience["CB2CF"]["users"], "std_recall@50": float(np.std([r[1]["recall@50"] for r in runs]))}


def _score_oracle(table: _Table, split: Split) -> None:
    """The warm oracle (ceiling): ALS on warm-train plus every cold interaction, its own vectors."""
    t0 = time.time()
    oracle = train_space(to_matrix(split.oracle_interactions, split.users, None, binary=True), split.space_config,
                         space_id="ml-oracle-als")
    cold_vectors = oracle.item_vectors[[oracle.item_index(i) for i in split.cold_test]]
    table.score("warm oracle (ceiling)", oracle.user_vectors @ cold_vectors.T)
    table.timings["oracle"] = time.time() - t0


def _ratios(results: dict[str, dict], audience: dict[str, dict]) -> dict[str, float | None]:
    """CB2CF and ridge relative to the best content baseline and to the warm oracle."""
    base = max(results["ridge"]["recall@20"], results["content kNN"]["recall@20"])
    orc = results["warm oracle (ceiling)"]["recall@20"]
    cb = results["CB2CF"]["recall@20"]
    return {"cb2cf_over_best_content_baseline_recall@20": cb / base if base else None,
            "cb2cf_fraction_of_oracle_recall@20": cb / orc if orc else None,
            "ridge_fraction_of_oracle_recall@20": results["ridge"]["recall@20"] / orc if orc else None,
            "cb2cf_over_ridge_audience_recall@50": (audience["CB2CF"]["recall@50"] / audience["ridge"]["recall@50"]
                                                    if audience["ridge"]["recall@50"] else None)}


def _split_summary(split: Split, test_users: int) -> dict[str, int]:
    """Item, user and interaction counts of the split."""
    nw, nv = len(split.warm_items), len(split.cold_val)
    return {"items": int(nw + nv + len(split.cold_test)), "warm_items": int(nw), "cold_val_items": int(nv),
            "cold_test_items": int(len(split.cold_test)), "users": int(len(split.users)),
            "warm_train_interactions": int(split.warm_train.matrix.nnz), "test_interactions": int(split.R_test.nnz),
            "test_users": test_users}


def run_benchmark(dataset: str | Path, seed: int = 0, cold_frac: float = 0.2, factors: int = 64,
                  train_config: TrainConfig | None = None, cache_dir: str | Path | None = None,
                  show_progress: bool = False, extra_train_seeds: tuple[int, ...] = ()) -> dict:
    """Run the full protocol and return the results dict (table rows + metadata + model).

    ``extra_train_seeds`` trains CB2CF again with those seeds on the same split and adds a
    row with the mean over all its training seeds (the saved model is the first one's).

    Raises:
        ContentError, InteractionLogError: Malformed dataset.
    """
    t_start = time.time()
    split = prepare_split(dataset, seed, cold_frac, factors, cache_dir)
    Xc = concat_views(split.feats, split.masks)
    table = _Table(split.R_test)
    _score_reference_baselines(table, split, seed)
    _score_knn(table, split, Xc)
    _score_ridge(table, split, Xc)
    tcfg = train_config or TrainConfig(name="cb2cf-ml-latest-small", seed=seed)
    model = _score_cb2cf(table, split, tcfg, show_progress, extra_train_seeds)
    _score_oracle(table, split)
    results, audience = table.results, table.audience
    model.manifest["metrics"].update({f"test_{k}": results["CB2CF"][k] for k in METRIC_KEYS}
                                     | {f"test_audience_{k}": audience["CB2CF"][k] for k in AUDIENCE_KEYS})
    return {
        "protocol": __doc__.strip().split("\n\n", 1)[1],
        "dataset": str(dataset), "seed": seed,
        "split": _split_summary(split, results["CB2CF"]["users"]),
        "data_report": split.report,
        "space": {"config": asdict(split.space_config), "warm_val": split.warm_metrics, "ref": split.space.ref},
        "views": [asdict(s) for s in split.specs],
        "results": results,
        "results_audience": audience,
        "ratios": _ratios(results, audience),
        "seconds": {"total": round(time.time() - t_start, 1)} | {k: round(v, 1) for k, v in split.seconds.items()}
                   | {k: round(v, 1) for k, v in table.timings.items()},
        "train_config": asdict(tcfg),
        "_model": model,
        "_space": split.space,
    }


def format_table(res: dict) -> str:
    """Markdown table of the results plus the ratio lines."""
    head = "| method | " + " | ".join(METRIC_KEYS) + " | users |"
    lines = [head, "|" + "---|" * (len(METRIC_KEYS) + 2)]
    for name, r in res["results"].items():
        lines.append(f"| {name} | " + " | ".join(f"{r[k]:.4f}" for k in METRIC_KEYS) + f" | {r['users']} |")
    ra = res["ratios"]
    lines.append("")
    lines.append(f"CB2CF Recall@20 / best content baseline: {ra['cb2cf_over_best_content_baseline_recall@20']:.2f}x; "
                 f"CB2CF / warm oracle: {ra['cb2cf_fraction_of_oracle_recall@20']:.2f}; "
                 f"ridge / warm oracle: {ra['ridge_fraction_of_oracle_recall@20']:.2f}")
    lines += ["", "Audience (all users ranked for each cold test item: who to seed it to)", "",
              "| method | " + " | ".join(AUDIENCE_KEYS) + " | items |", "|" + "---|" * (len(AUDIENCE_KEYS) + 2)]
    for name, r in res["results_audience"].items():
        lines.append(f"| {name} | " + " | ".join(f"{r[k]:.4f}" for k in AUDIENCE_KEYS) + f" | {r['users']} |")
    lines.append("")
    lines.append(f"CB2CF audience Recall@50 / ridge: {ra['cb2cf_over_ridge_audience_recall@50']:.2f}x")
    s = res["seconds"]
    lines.append(f"CB2CF training {s['cb2cf']}s; total run {s['total']}s (features {s['features']}s)")
    return "\n".join(lines)


def write_json(res: dict, path: str | Path) -> None:
    """Write the results (without the model object) as JSON."""
    out = {k: v for k, v in res.items() if not k.startswith("_")}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=2, default=str))
