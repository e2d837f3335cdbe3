"""The benchmark's seeded split: cold and warm items, the warm ALS space, the content views.

See :mod:`cb2cf.bench.benchmark` for the protocol (steps 1-4 happen here).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cb2cf.bench.movielens import load_movielens, movie_views
from cb2cf.errors import ContentError
from cb2cf.features import ViewSpec, select_rows
from cb2cf.interactions import Interactions, to_matrix
from cb2cf.metrics import rank_metrics
from cb2cf.space import CFSpace, SpaceConfig, train_space
from cb2cf.train import ItemSet

logger = logging.getLogger(__name__)


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
                  cache_dir: str | Path | None = None, drop_views: tuple[str, ...] = ()) -> Split:
    """Steps 1-4 of the protocol: read, split, train the warm ALS space, build the views.

    The views are built once for every rated item in id order (so the text-embedding
    cache is shared by all seeds) and then cut into warm, validation and test rows.
    ``drop_views`` removes views (e.g. ``("tags",)``: the benchmark's second dataset).

    Raises:
        ContentError, InteractionLogError: Malformed dataset or unknown view in ``drop_views``.
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
    feats, masks, specs = _split_views(movies, tags, items, np.concatenate([warm_items, cold_val, cold_test]),
                                       cache_dir, drop_views)
    t_feat = time.time() - t0
    full = ratings.loc[ratings["item_id"].isin(set(warm_items) | set(cold))]
    full = full.loc[~full.index.isin(warm_val.index) & full["user_id"].isin(set(users))]
    return Split(users, warm_items, cold_val, cold_test, inter, truth(cold_val).tocsr(), truth(cold_test).tocsr(),
                 space, feats, masks, specs, full, scfg, report, warm_metrics,
                 {"space": t_space, "features": t_feat})


def _split_views(movies: pd.DataFrame, tags: pd.DataFrame | None, items: np.ndarray, order: np.ndarray,
                 cache_dir: str | Path | None, drop_views: tuple[str, ...],
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[ViewSpec]]:
    """The views of every item of ``items`` (sorted ids), rows reordered to ``order``, ``drop_views`` removed.

    Raises:
        ContentError: A view of ``drop_views`` is unknown.
    """
    feats, masks, specs = movie_views(movies, tags, items, cache_dir)
    unknown = set(drop_views) - set(feats)
    if unknown:
        raise ContentError(f"drop_views names unknown views {sorted(unknown)}; known: {sorted(feats)}")
    pos = {str(i): r for r, i in enumerate(items)}
    rows = np.array([pos[str(i)] for i in order], dtype=np.int64)
    feats, masks = select_rows(feats, masks, rows)
    keep = [v for v in specs if v.name not in drop_views]
    return ({v.name: feats[v.name] for v in keep}, {v.name: masks[v.name] for v in keep}, keep)
