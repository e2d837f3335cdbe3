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
   neighbourhood size, the peers' and CB2CF's early stopping, magnitude scaling's ``a``.

Methods: random; most popular (counts over the cold-test interactions themselves, a
leaky reference: no cold-start method can know them); content kNN (a cold item's score
for a user = sum of its cosine similarity to the user's warm-train items among its k
nearest warm items); ridge (content -> CF vector, scored with the user vectors); the
published peers DropoutNet, Heater, CLCRec and ALDI (:mod:`cb2cf.bench.peers`);
CB2CF; magnitude scaling (cold vectors' norms pulled toward the mean warm norm, its
strength picked on validation) after ridge and CB2CF (and in each peer's row); warm
oracle (ALS trained on warm-train + all cold interactions; its own user and item
vectors: the ceiling). The audience table adds most active users (warm-train counts).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from cb2cf.bench.methods import (
    FAILURES,
    ORACLE,
    PEER_NAMES,
    Table,
    peer_data,
    score_cb2cf,
    score_knn,
    score_oracle,
    score_peer,
    score_reference,
    score_ridge,
)
from cb2cf.bench.movielens import concat_views
from cb2cf.bench.peers import PeerConfig
from cb2cf.bench.report import (  # noqa: F401 - format_table, write_json re-exported for callers
    AUDIENCE_KEYS,
    METRIC_KEYS,
    format_table,
    ratios,
    summarize,
    write_json,
)
from cb2cf.bench.split import Split, prepare_split  # noqa: F401 - Split, prepare_split re-exported for callers
from cb2cf.model import CB2CF
from cb2cf.train import TrainConfig

logger = logging.getLogger(__name__)



def _split_summary(split: Split) -> dict[str, int]:
    """Item, user and interaction counts of the split."""
    nw, nv = len(split.warm_items), len(split.cold_val)
    return {"items": int(nw + nv + len(split.cold_test)), "warm_items": int(nw), "cold_val_items": int(nv),
            "cold_test_items": int(len(split.cold_test)), "users": int(len(split.users)),
            "warm_train_interactions": int(split.warm_train.matrix.nnz), "test_interactions": int(split.R_test.nnz),
            "test_users": int((np.diff(split.R_test.tocsr().indptr) > 0).sum())}


def run_benchmark(dataset: str | Path, seed: int = 0, cold_frac: float = 0.2, factors: int = 64,
                  train_config: TrainConfig | None = None, cache_dir: str | Path | None = None,
                  show_progress: bool = False, drop_views: tuple[str, ...] = (),
                  peer_config: PeerConfig | None = None, peers: tuple[str, ...] = PEER_NAMES) -> dict:
    """Run the full protocol on one seeded split and return the results dict (table rows + metadata + model).

    A method that fails is a row ``{"failed": reason}``; the others still run. ``peers``
    picks which of the published peers run (all by default).

    Raises:
        ContentError, InteractionLogError: Malformed dataset (the split itself failed).
    """
    t_start = time.time()
    split = prepare_split(dataset, seed, cold_frac, factors, cache_dir, drop_views)
    Xc = concat_views(split.feats, split.masks)
    table = Table(split.R_test)
    score_reference(table, split, seed)
    table.guarded(("content kNN",), lambda: score_knn(table, split, Xc))
    table.guarded(("ridge", "ridge + magnitude scaling"), lambda: score_ridge(table, split, Xc))
    data, pcfg = peer_data(split, Xc), peer_config or PeerConfig(seed=seed)
    for name in peers:
        table.guarded((name,), lambda name=name: score_peer(table, name, data, pcfg))
    tcfg = train_config or TrainConfig(name="cb2cf-ml-latest-small", seed=seed)
    model: list[CB2CF] = []
    table.guarded(("CB2CF", "CB2CF + magnitude scaling"),
                  lambda: model.append(score_cb2cf(table, split, tcfg, show_progress)))
    table.guarded((ORACLE,), lambda: score_oracle(table, split))
    results, audience = table.results, table.audience
    if model:
        model[0].manifest["metrics"].update({f"test_{k}": results["CB2CF"][k] for k in METRIC_KEYS}
                                            | {f"test_audience_{k}": audience["CB2CF"][k] for k in AUDIENCE_KEYS})
    return {
        "dataset": str(dataset), "drop_views": list(drop_views), "seed": seed,
        "split": _split_summary(split),
        "data_report": split.report,
        "space": {"config": asdict(split.space_config), "warm_val": split.warm_metrics, "ref": split.space.ref},
        "views": [asdict(s) for s in split.specs],
        "results": results,
        "results_audience": audience,
        "ratios": ratios(results),
        "seconds": {"total": round(time.time() - t_start, 1)} | {k: round(v, 1) for k, v in split.seconds.items()}
                   | table.timings,
        "train_config": asdict(tcfg), "peer_config": asdict(pcfg),
        "_model": model[0] if model else None,
        "_space": split.space,
    }


def run_seeds(dataset: str | Path, seeds: tuple[int, ...] = (0,), train_config: TrainConfig | None = None,
              cache_dir: str | Path | None = None, show_progress: bool = False, drop_views: tuple[str, ...] = (),
              peers: tuple[str, ...] = PEER_NAMES) -> dict:
    """:func:`run_benchmark` once per seed (split, space and every method's training seeded by it), then the summary.

    A seed whose split cannot be built is recorded as failed with its reason; the other
    seeds still run.

    Returns:
        ``{"dataset", "drop_views", "summary": {...}, "runs": [...], "_model", "_space"}``;
        the model and space are the first successful seed's.
    """
    runs: list[dict] = []
    for s in seeds:
        tcfg = replace(train_config, seed=int(s)) if train_config else None
        try:
            runs.append(run_benchmark(dataset, seed=int(s), train_config=tcfg, cache_dir=cache_dir,
                                      show_progress=show_progress, drop_views=drop_views, peers=peers))
        except FAILURES as exc:
            logger.error("seed %s failed: %s: %s", s, type(exc).__name__, exc)
            runs.append({"seed": int(s), "failed": f"{type(exc).__name__}: {exc}"})
    first = next((r for r in runs if "results" in r), {})
    return {"dataset": str(dataset), "drop_views": list(drop_views), "protocol": __doc__.strip().split("\n\n", 1)[1],
            "summary": summarize(runs), "runs": runs,
            "_model": first.get("_model"), "_space": first.get("_space")}
