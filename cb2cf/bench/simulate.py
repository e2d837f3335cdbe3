"""The closed-loop cold-start benchmark (``cb2cf simulate``) on a MovieLens "latest" directory.

Protocol (seeded by ``seed``):

1. The benchmark's split (:func:`cb2cf.bench.benchmark.prepare_split`): cold items held out,
   ALS space on the warm-train interactions. The cold *test* items arrive, in a seeded
   random order, in cohorts of ``cohort_size``, each with zero interactions.
2. A user shown an item engages if they rated it in the held-out data: view + completion,
   plus a like when the rating is >= ``like_rating`` (weights 1, 2, 3 as in the fold-in).
3. Every item goes through the ladder (:class:`cb2cf.exposure.LadderConfig`: a first pool of
   ``k0`` users - 2% of the users on this small base -, then x10, then x10, capped by the
   users left). After each stage the decision rule compares the items of a cohort on what
   their pool saw (engagement per impression): the top share is promoted to the next stage,
   the middle band is held and gets an evidence pool of fresh users (``evidence_share`` of the
   stage's pool) and is decided again on the pooled evidence, the rest stop.
4. Budget: every policy spends the same impressions. A cohort's budget at each stage is what
   the ladder without evidence pools spends there (as many videos as it promotes, each
   ``min(pool, users left)``); the evidence pools of the stage before and the videos they
   promote are paid from it, split as evenly as the users left allow (a policy whose pools
   see no engagement promotes fewer videos and spends less; the table prints each policy's
   impressions).
5. What differs is who fills a pool: ``random`` (random users), ``most_active`` (warm-train
   counts), ``ridge`` / ``cb2cf`` (their placement, never updated), ``cb2cf_foldin`` (CB2CF
   folded in with every engagement so far), ``cb2cf_loop`` (the full default of
   :mod:`cb2cf.exposure`: fold-in, the user-side exploration share of the later pools and
   evidence pools (none in the first pool: ``LadderConfig.first_exploration``), later pools
   aimed at the clusters where the item did well, and item-side exploration: ``explore_items``
   of each cohort drawn at random from the engaged videos below the hold band get an evidence
   pool too), ``oracle`` (ALS on warm-train + every cold interaction: the item's true CF
   vector; a ceiling). Nobody is shown an item twice.

Metrics (:mod:`cb2cf.bench.simreport`): ``first_pool_precision``, ``audience_recall``,
``impressions_per_engagement``, ``promoted_precision``, ``exposure_gini``, ``niche_reach``,
``slate_tag_coverage``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cb2cf.audience import Audience, AudienceConfig
from cb2cf.bench.benchmark import Split, prepare_split
from cb2cf.bench.movielens import concat_views, load_movielens
from cb2cf.exposure import LadderConfig, StageStats, cluster_engagement, decide, decide_evidence, stage_audience
from cb2cf.exposure.ladder import DEFAULT_EVENT_WEIGHTS
from cb2cf.foldin import FoldInConfig, fold_in
from cb2cf.interactions import to_matrix
from cb2cf.metrics import rank_metrics
from cb2cf.model import CB2CF
from cb2cf.ridge import ridge_predict, select_ridge_alpha
from cb2cf.space import train_space
from cb2cf.train import TrainConfig, train_cb2cf

logger = logging.getLogger(__name__)

POLICIES = ("random", "most_active", "ridge", "cb2cf", "cb2cf_foldin", "cb2cf_loop", "oracle")


@dataclass
class SimConfig:
    """Closed-loop benchmark settings.

    Attributes:
        ladder: The exposure ladder and decision rule (``cb2cf_loop``).
        cohort_size: Items that arrive together and are compared at each stage.
        foldin: Fold-in settings (prior strength on the space's scale, confidences, negatives).
        like_rating: A held-out rating at or above this is a like.
        n_clusters: Interest clusters of the audience model.
        max_train_seconds: Guard on CB2CF training time (it stops on epochs and validation first).
        cold_frac: Share of items held out as cold (the benchmark's split).
        factors: ALS factors (the benchmark's split).
    """

    ladder: LadderConfig = field(default_factory=LadderConfig)
    cohort_size: int = 100
    foldin: FoldInConfig = field(default_factory=FoldInConfig)
    like_rating: float = 4.0
    n_clusters: int = 16
    max_train_seconds: float = TrainConfig.max_seconds  # a guard only: CB2CF stops on epochs and validation
    cold_frac: float = 0.2
    factors: int = 64


@dataclass
class World:
    """What the simulated platform knows and what only the simulator knows (the truth)."""

    user_ids: np.ndarray
    U: np.ndarray  # (n_users, dim) space user vectors
    item_ids: np.ndarray  # cold test items, in arrival order
    W: np.ndarray  # (n_users, n_items) engagement weight if shown (0: no engagement) - the truth
    genres: np.ndarray  # (n_items, n_genres) multi-hot: the items' tags
    P: dict[str, np.ndarray]  # placements: "ridge", "cb2cf" (n_items, dim)
    oracle_scores: np.ndarray  # (n_users, n_items)
    activity: np.ndarray  # (n_users,) warm-train interaction counts
    audience: Audience
    cohorts: list[np.ndarray]
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Trace:
    """What one policy did: who saw what, the first pool, promotions and the reach curve."""

    E: np.ndarray  # (n_users, n_items) bool: shown
    first_pool: tuple[int, int]  # (impressions, engaged users) of the first pools
    promoted: set[int]  # items promoted after the first pool (the rule applied to the first pool's stats)
    curve: list[tuple[int, float]]  # (cumulative impressions, mean audience recall) after each stage


def _truth(split: Split, dataset: str | Path, like_rating: float, items: np.ndarray) -> np.ndarray:
    """(n_users, n_items) engagement weights from the held-out ratings."""
    ratings = load_movielens(dataset)[0]
    r = ratings.loc[ratings["item_id"].isin(set(items)) & ratings["user_id"].isin(set(split.users))]
    uidx = {u: i for i, u in enumerate(split.space.user_ids)}
    iidx = {m: j for j, m in enumerate(items)}
    w = DEFAULT_EVENT_WEIGHTS
    W = np.zeros((len(split.space.user_ids), len(items)), np.float32)
    for u, m, rating in zip(r["user_id"], r["item_id"], r["weight"]):  # the rating (read_log renames it)
        W[uidx[u], iidx[m]] = w["view"] + w["completion"] + (w["like"] if rating >= like_rating else 0.0)
    return W


def _placements(split: Split, cfg: SimConfig, seed: int, model: CB2CF | None, part: str) -> dict[str, np.ndarray]:
    """Ridge (alpha on cold validation) and CB2CF (given, or trained on the warm items) vectors of the ``part`` items."""
    Xc = concat_views(split.feats, split.masks)
    rows, U = split.rows, split.space.user_vectors

    def val_recall(alpha: float, W: np.ndarray) -> float:
        return rank_metrics(U @ ridge_predict(W, Xc[rows["val"]]).T, split.R_val)["recall@20"]

    W, _, _ = select_ridge_alpha(Xc[rows["warm"]], split.space.item_vectors, (0.1, 1.0, 10.0, 100.0, 1000.0), val_recall)
    if model is None:
        tcfg = TrainConfig(name="cb2cf-simulate", seed=seed, max_seconds=cfg.max_train_seconds)
        model, _ = train_cb2cf(split.item_set("warm"), split.space, tcfg, split.item_set("val"), split.specs)
    test = split.item_set(part)
    return {"ridge": ridge_predict(W, Xc[rows[part]]).astype(np.float32),
            "cb2cf": model.predict(test.features, test.masks).astype(np.float32)}


def _usable(model: CB2CF | None, split: Split) -> CB2CF | None:
    """``model`` when it was trained for this split's space, else None (trained in the run)."""
    if model is None:
        return None
    ref = model.manifest.get("cf_space", {})
    if (ref.get("id"), ref.get("version")) == (split.space.space_id, split.space.version):
        return model
    logger.warning("model %s was trained for space %s@%s, not %s: training one in the run", model.version,
                   ref.get("id"), ref.get("version"), split.space.ref)
    return None


def build_world(dataset: str | Path, seed: int = 0, config: SimConfig | None = None,
                cache_dir: str | Path | None = None, model: CB2CF | None = None, part: str = "test",
                split: Split | None = None) -> World:
    """Split, truth, placements, the oracle and the audience model for one seed.

    ``part="val"`` simulates the cold *validation* items instead (for tuning the loop's
    settings without looking at the test items). ``split`` reuses a split already prepared
    for this seed (with ``model`` trained on it, both parts share one space and one model).

    Raises:
        ContentError, InteractionLogError: Malformed dataset.
    """
    cfg = config or SimConfig()
    t0 = time.time()
    split = split or prepare_split(dataset, seed, cfg.cold_frac, cfg.factors, cache_dir)
    secs = {"split": time.time() - t0}
    rng = np.random.default_rng([seed, 7])
    cold = {"test": split.cold_test, "val": split.cold_val}[part]
    order = rng.permutation(len(cold))
    items = cold[order]
    W = _truth(split, dataset, cfg.like_rating, items)
    t0 = time.time()
    P = _placements(split, cfg, seed, _usable(model, split), part)
    P = {k: v[order] for k, v in P.items()}
    secs["placements"] = time.time() - t0
    t0 = time.time()
    oracle = train_space(to_matrix(split.oracle_interactions, split.users, None, binary=True), split.space_config,
                         space_id="ml-oracle-als")
    ou = oracle.user_vectors[[oracle.user_index(u) for u in split.space.user_ids]]
    oracle_scores = ou @ oracle.item_vectors[[oracle.item_index(i) for i in items]].T
    secs["oracle"] = time.time() - t0
    genres = split.feats["genres"][split.rows[part]][order] * split.masks["genres"][split.rows[part]][order, None]
    activity = np.asarray(split.warm_train.matrix.sum(1)).ravel().astype(np.float64)
    aud = Audience(split.space, AudienceConfig(n_clusters=cfg.n_clusters, exploration=cfg.ladder.exploration, seed=seed))
    cohorts = [np.arange(i, min(i + cfg.cohort_size, len(items))) for i in range(0, len(items), cfg.cohort_size)]
    return World(split.space.user_ids, split.space.user_vectors, items, W, genres, P, oracle_scores, activity, aud,
                 cohorts, secs)


def _recall(world: World, E: np.ndarray) -> float:
    truth = world.W > 0
    n = truth.sum(0)
    has = n > 0
    return float(((E & truth).sum(0)[has] / n[has]).mean()) if has.any() else 0.0


def _stats(world: World, j: int, users: np.ndarray) -> StageStats:
    w = world.W[users, j]
    counts = {"view": int((w > 0).sum()), "completion": int((w > 0).sum()), "like": int((w > 3).sum())}
    return StageStats(len(users), counts, float(w.sum()), int((w > 0).sum()))


def _folded(world: World, j: int, E: np.ndarray, fcfg: FoldInConfig) -> np.ndarray:
    """The item's CB2CF placement folded in with every engagement (and, when configured, every
    impression without one) it has had."""
    shown = E[:, j]
    if not shown.any():
        return world.P["cb2cf"][j]
    eng = np.flatnonzero(shown & (world.W[:, j] > 0))
    neg = np.flatnonzero(shown & (world.W[:, j] <= 0))
    return fold_in(world.P["cb2cf"][j], world.U[eng], fcfg.confidence(world.W[eng, j]), fcfg.strength(world.U),
                   world.U[neg], fcfg.negative_confidence)[0]


def _loop_pool(world: World, j: int, k: int, E: np.ndarray, cfg: SimConfig, seed: int, stage: int) -> np.ndarray:
    """``cb2cf_loop``'s pool: :func:`stage_audience` from the folded-in vector, aimed where the item did well."""
    lad, aud = cfg.ladder, world.audience
    exposed = world.user_ids[E[:, j]]
    engaged = world.user_ids[E[:, j] & (world.W[:, j] > 0)]
    eng = cluster_engagement(aud, exposed, engaged) if stage else None
    v = _folded(world, j, E, cfg.foldin)
    pool = stage_audience(aud, v, k, exposed, eng, lad.exploration_at(stage), lad.aim_share, lad.aim_clusters,
                          seed=int(seed) * 1_000_003 + j * 31 + stage, explore_clusters=lad.explore_clusters)
    return np.array([aud.space.user_index(u["user_id"]) for u in pool], int)


def _scores(world: World, name: str, j: int, E: np.ndarray, cfg: SimConfig, rng: np.random.Generator) -> np.ndarray:
    """A non-loop policy's score of every user for item ``j`` (higher first)."""
    if name == "random":
        return rng.random(len(world.user_ids))
    if name == "most_active":
        return world.activity
    if name == "oracle":
        return world.oracle_scores[:, j]
    if name == "cb2cf_foldin":
        return world.U @ _folded(world, j, E, cfg.foldin)
    return world.U @ world.P[name][j]


def _pool(world: World, name: str, j: int, k: int, E: np.ndarray, cfg: SimConfig, seed: int, stage: int,
          rng: np.random.Generator) -> np.ndarray:
    """The users of item ``j``'s pool at ``stage`` under policy ``name`` (none shown it before)."""
    if name == "cb2cf_loop":
        return _loop_pool(world, j, k, E, cfg, seed, stage)
    s = np.where(E[:, j], -np.inf, _scores(world, name, j, E, cfg, rng))
    return np.argsort(-s, kind="stable")[: int(min(k, (~E[:, j]).sum()))]


def _fill(budget: int, caps: dict[int, int]) -> dict[int, int]:
    """Split ``budget`` impressions over the videos of ``caps`` as evenly as their caps allow (water-filling)."""
    out, left, todo = {}, max(0, int(budget)), sorted(caps, key=lambda j: (caps[j], j))
    for i, j in enumerate(todo):
        out[j] = min(caps[j], left // (len(todo) - i))
        left -= out[j]
    return out


def _evidence(world: World, name: str, cfg: SimConfig, lad: LadderConfig, seed: int, stage: int, E: np.ndarray,
              held: list[int], stats: dict[str, StageStats], threshold: float | None, most: float,
              rng: np.random.Generator) -> tuple[set[int], int]:
    """Held videos' evidence pools (in rank order, while ``most`` impressions last), then the decision
    on the pooled evidence: (promoted, impressions spent)."""
    k = lad.evidence_size(stage, len(world.user_ids))
    if not held or k <= 0:
        return set(), 0
    pooled, spent = {}, 0
    for j in held[: max(0, int(most // k))]:
        users = _pool(world, name, j, k, E, cfg, seed, stage + 1, rng)
        E[users, j] = True
        spent += len(users)
        ev, st = _stats(world, j, users), stats[str(j)]
        pooled[str(j)] = StageStats(st.impressions + ev.impressions, {}, st.weight + ev.weight, st.engaged + ev.engaged)
    dec = decide_evidence(pooled, stage, threshold, lad)
    return {int(v) for v, d in dec.items() if d.action in ("promote", "graduate")}, spent


def _explore_seed(name: str, seed: int, stage: int, cohort: np.ndarray) -> int | None:
    """The seed of the loop's item-side exploration draw for one cohort and stage (None: other policies)."""
    return int(seed) * 1_000_003 + int(cohort[0]) * 31 + stage if name == "cb2cf_loop" else None


def run_policy(world: World, name: str, cfg: SimConfig, seed: int) -> Trace:
    """One policy through the ladder, cohort by cohort, stage by stage: pools filled by the policy,
    the decision rule on what each pool saw, held videos' evidence pools paid from the next stage.

    Each cohort's budget at a stage is what the ladder without evidence pools spends there: as
    many videos as it promotes, each ``min(pool size, users not yet shown it)``. The evidence
    pools of the stage before and the videos they promote are paid from it, split as evenly as
    the users left allow, so every policy spends the same impressions.
    """
    n_users, n_items = world.W.shape
    rng = np.random.default_rng([seed, POLICIES.index(name)])
    lad = cfg.ladder if name == "cb2cf_loop" else replace(cfg.ladder, explore_items=0.0)
    E = np.zeros((n_users, n_items), bool)
    sizes = lad.pool_sizes(n_users)
    plan = {j: sizes[0] for j in range(n_items)}
    plain = [len(c) for c in world.cohorts]  # each cohort's videos at this stage on the ladder without evidence pools
    first, promoted, curve = (0, 0), set(), []
    for stage in range(len(sizes)):
        nxt: dict[int, int] = {}
        for ci, cohort in enumerate(world.cohorts):
            ids = [int(j) for j in cohort if int(j) in plan]
            stats = {}
            for j in ids:
                users = _pool(world, name, j, plan[j], E, cfg, seed, stage, rng)
                E[users, j] = True
                stats[str(j)] = _stats(world, j, users)
            if stage == 0:
                first = (first[0] + sum(s.impressions for s in stats.values()),
                         first[1] + sum(s.engaged for s in stats.values()))
            dec = decide(stats, stage, lad, order=list(stats), explore_seed=_explore_seed(name, seed, stage, cohort))
            ups = {int(v) for v, d in dec.items() if d.action in ("promote", "graduate")}
            held = [int(v) for v, d in dec.items() if d.action == "hold"]
            thr = next(iter(dec.values())).threshold["promote"] if dec else None
            last = stage + 1 >= len(sizes)
            plain[ci] = 0 if last else min(lad.promote_count(plain[ci]), len(ups))
            budget = 0 if last else plain[ci] * min(sizes[stage + 1], n_users - sum(sizes[: stage + 1]))
            more, spent = _evidence(world, name, cfg, lad, seed, stage, E, held, stats, thr,
                                    lad.evidence_budget * budget, rng)
            promoted |= (ups | more) if stage == 0 else set()
            if not last:
                caps = {j: int(min(sizes[stage + 1], (~E[:, j]).sum())) for j in ups | more}
                nxt |= _fill(budget - spent, caps)
        curve.append((int(E.sum()), _recall(world, E)))
        plan = {j: k for j, k in nxt.items() if k > 0}
    return Trace(E, first, promoted, curve)


def simulate(world: World, cfg: SimConfig | None = None, seed: int = 0) -> dict[str, Trace]:
    """Every policy on the same arrivals through the same ladder (the same pool sizes and promotion counts)."""
    cfg = cfg or SimConfig()
    t0 = time.time()
    traces = {name: run_policy(world, name, cfg, seed) for name in POLICIES}
    world.seconds["simulation"] = time.time() - t0
    return traces


def ablation(world: World, cfg: SimConfig | None = None, seed: int = 0) -> dict[str, Trace]:
    """What exploration and the evidence pools cost and buy: the loop without its user-side exploration
    (later pools), without its item-side exploration, without both, and the static and fold-in
    policies on the ladder without evidence pools (held videos only wait)."""
    cfg = cfg or SimConfig()
    lad = cfg.ladder

    def run(name: str, **change: float) -> Trace:
        return run_policy(world, name, replace(cfg, ladder=replace(lad, **change)), seed)

    return {"cb2cf_loop without user-side exploration": run("cb2cf_loop", exploration=0.0, first_exploration=0.0),
            "cb2cf_loop without item-side exploration": run("cb2cf_loop", explore_items=0.0),
            "cb2cf_loop without exploration": run("cb2cf_loop", exploration=0.0, first_exploration=0.0,
                                                  explore_items=0.0),
            "cb2cf without evidence pools": run("cb2cf", evidence_share=0.0),
            "cb2cf_foldin without evidence pools": run("cb2cf_foldin", evidence_share=0.0)}
