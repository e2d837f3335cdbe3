"""The exposure ladder, the decision rule, the creator prior and re-entry on a synthetic CF space
whose right answers are known: four interest groups of users, each along one axis."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from cb2cf.audience import Audience, AudienceConfig
from cb2cf.errors import InteractionLogError, LadderConfigError, NotEligibleError, UnknownIdError
from cb2cf.exposure import (
    Exposure,
    LadderConfig,
    StageStats,
    apply,
    cluster_engagement,
    creator_prior,
    decide,
    decide_evidence,
    graduate_if_learned,
    reenter,
    stage_audience,
    stage_stats,
    start,
)
from cb2cf.foldin import fold_in
from cb2cf.space import CFSpace

GROUPS, PER_GROUP, DIM = 4, 40, 4


@pytest.fixture(scope="module")
def space() -> CFSpace:
    """160 users in four groups (user ``g<group>-<i>`` near axis ``group``) and 8 warm items, two per axis."""
    rng = np.random.default_rng(0)
    users = np.concatenate([np.eye(DIM)[g] + 0.05 * rng.normal(size=(PER_GROUP, DIM)) for g in range(GROUPS)])
    ids = [f"g{g}-{i}" for g in range(GROUPS) for i in range(PER_GROUP)]
    items = np.repeat(np.eye(DIM), 2, axis=0) + 0.01
    return CFSpace("synthetic", "v1", np.array(ids), users, np.array([f"w{j}" for j in range(8)]), items)


@pytest.fixture(scope="module")
def audience(space: CFSpace) -> Audience:
    return Audience(space, AudienceConfig(n_clusters=GROUPS, near_clusters=1, seed=0))


def _group(user: str) -> int:
    return int(user[1:].split("-")[0])


def test_ladder_sizes_grow_and_a_flat_ladder_is_refused() -> None:
    cfg = LadderConfig()
    assert cfg.pool_sizes(1_000_000) == [300, 3000, 30000] and cfg.n_stages == 3
    assert cfg.pool_sizes(610) == [12, 120, 1200]  # a small base: 2% of the users
    assert LadderConfig(first_pool=50, growth=(4,)).pool_sizes(10_000) == [50, 200]
    with pytest.raises(LadderConfigError, match="must grow"):
        LadderConfig(growth=(10, 1.0))
    with pytest.raises(LadderConfigError, match="must grow"):
        LadderConfig(growth=(float("nan"),))
    with pytest.raises(LadderConfigError, match="promote_share"):
        LadderConfig(promote_share=1.5)


def test_failed_review_never_enters_a_pool() -> None:
    with pytest.raises(NotEligibleError, match="'bad'.*review"):
        start("bad", review_passed=False)
    ex = start("ok", review_passed=True, creator_id="famous")
    assert (ex.state, ex.stage, ex.creator_id) == ("pool", 0, "famous")


def test_stage_stats_counts_weights_and_refuses_bad_events() -> None:
    events = [{"user_id": "a", "event": "view"}, {"user_id": "a", "event": "like"}, {"user_id": "b", "event": "view"}]
    st = stage_stats("v1", ["a", "b", "c", "d"], events)
    assert (st.impressions, st.engaged, st.weight, st.counts) == (4, 2, 5.0, {"view": 2, "like": 1})
    assert st.rate == pytest.approx(1.25) and st.as_dict()["like"] == 1
    with pytest.raises(InteractionLogError, match="'v1'.*weight"):
        stage_stats("v1", ["a"], [{"user_id": "a", "event": "view", "weight": -1}])
    with pytest.raises(InteractionLogError, match="'v1'.*weight"):
        stage_stats("v1", ["a"], [{"user_id": "a", "event": "view", "weight": float("nan")}])
    with pytest.raises(InteractionLogError, match="unknown event"):
        stage_stats("v1", ["a"], [{"user_id": "a", "event": "stare"}])
    with pytest.raises(UnknownIdError, match="'v1'.*'zz'"):
        stage_stats("v1", ["a"], [{"user_id": "zz", "event": "view"}], known_users=["a"])


def _cohort(rates: list[float], impressions: int = 10) -> dict[str, StageStats]:
    return {f"v{i}": StageStats(impressions, {"view": 1}, r * impressions, 1) for i, r in enumerate(rates)}


def test_decision_rule_promotes_the_top_share_holds_the_middle_and_stops_the_rest() -> None:
    rates = [0.9, 0.1, 0.5, 0.0, 0.3, 0.2, 0.8, 0.05, 0.4, 0.6]  # ten videos: 1 promoted, 2 held, 7 stopped
    d = decide(_cohort(rates), stage=0)
    assert [v for v, x in d.items() if x.action == "promote"] == ["v0"] and d["v0"].state == "promoted:1"
    assert sorted(v for v, x in d.items() if x.action == "hold") == ["v6", "v9"]
    assert sum(x.action == "stop" for x in d.values()) == 7
    assert d["v0"].threshold["promote"] == pytest.approx(0.9) and d["v6"].threshold["hold"] == pytest.approx(0.6)
    assert d["v0"].cohort == {"size": 10, "rank": 1} and d["v3"].metrics["rate"] == 0.0
    assert "top 10%" in d["v0"].rule and "held" in d["v9"].rule and "below the hold threshold" in d["v1"].rule
    assert "not above the minimum" in d["v3"].rule
    last = decide(_cohort(rates), stage=2)  # the last stage of the default ladder
    assert last["v0"].action == "graduate" and last["v0"].state == "graduated"


def test_nobody_moves_up_without_engagement() -> None:
    d = decide(_cohort([0.0, 0.0, 0.0]), stage=0)
    assert {x.action for x in d.values()} == {"stop"}


def test_creator_prior_only_breaks_ties() -> None:
    assert creator_prior([], global_mean=0.1) == pytest.approx(0.1)  # a new creator starts at the mean
    assert creator_prior([1, 1, 1, 1, 1], 0.1, strength=5) == pytest.approx(0.55)
    assert creator_prior([0] * 5, 0.1, strength=5) == pytest.approx(0.05)
    rates = [0.5, 0.5, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    # 20 videos: 2 promoted (v2, then one of the tied v0/v1), 4 held
    priors = {f"v{i}": 0.1 for i in range(20)} | {"v1": 0.9, "v2": 0.0}
    d = decide(_cohort(rates), stage=0, priors=priors)
    assert d["v2"].action == "promote"  # a better rate beats a worse prior: the prior never blocks
    assert d["v1"].action == "promote" and d["v0"].action == "hold"  # the tie went to the better creator
    assert d["v1"].tie_break and d["v0"].tie_break and not d["v2"].tie_break and "broke a tie" in d["v1"].rule
    flipped = decide(_cohort(rates), stage=0, priors=priors | {"v0": 0.9, "v1": 0.1})
    assert flipped["v0"].action == "promote" and flipped["v1"].action == "hold"


def test_apply_moves_the_state_and_keeps_the_history() -> None:
    ex = start("v0", True)
    d = decide(_cohort([0.9, 0.1]), stage=0)
    apply(ex, d["v0"], at=1.0)
    assert ex.state == "promoted:1" and ex.history[-1]["action"] == "promote" and ex.history[-1]["at"] == 1.0
    with pytest.raises(NotEligibleError, match="stage"):
        apply(ex, d["v0"])  # the video is at stage 0 still (no new stage opened): a stale decision
    ex.stage = 1
    with pytest.raises(NotEligibleError, match="applied to"):
        apply(ex, replace(d["v1"], stage=1))
    assert graduate_if_learned(ex, blend=0.95) and ex.state == "graduated"
    assert Exposure.from_dict(ex.to_dict()) == ex


def test_reentry_brings_back_a_late_bloomer_only() -> None:
    cfg = LadderConfig()
    exps = {v: Exposure(v, state, 0) for v, state in
            [("late", "stopped"), ("flat", "stopped"), ("waiting", "held"), ("running", "pool")]}
    totals = {"late": StageStats(12, {"view": 12}, 9.0, 9), "flat": StageStats(12, {"view": 1}, 1.0, 1),
              "waiting": StageStats(12, {"view": 7}, 7.0, 7), "running": StageStats(12, {"view": 12}, 12.0, 12)}
    out = reenter(exps, totals, {0: 0.5}, cfg)
    assert set(out) == {"late", "waiting"}  # rates 0.75 and 0.58 beat 0.5; 0.08 does not; "running" is active
    assert out["late"].state == "promoted:1" and "re-enters" in out["late"].rule and out["late"].action == "reenter"
    assert set(reenter(exps, totals, {0: 0.6}, cfg)) == {"late"}
    assert reenter(exps, totals, {}, cfg) == {}  # no threshold recorded: nothing to compare against


def test_stage_audience_excludes_exposed_aims_and_explores(space: CFSpace, audience: Audience) -> None:
    v = np.eye(DIM)[0].astype(np.float32)  # placed in group 0
    first = stage_audience(audience, v, 10, exploration=0.2, seed=1)
    assert len(first) == 10 and {u["reason"] for u in first} == {"score", "exploration"}
    assert all(_group(u["user_id"]) == 0 for u in first if u["reason"] == "score")
    assert all(_group(u["user_id"]) != 0 and u["cluster_about"] for u in first if u["reason"] == "exploration")
    exposed = [u["user_id"] for u in first]
    # what the stage saw: group-2 exposed users engaged, group 0 did not
    engaged = [u for u in exposed if _group(u) == 2]
    if not engaged:
        exposed.append("g2-0")
        engaged = ["g2-0"]
    eng = cluster_engagement(audience, exposed, engaged)
    nxt = stage_audience(audience, v, 40, exposed, eng, exploration=0.1, aim_share=0.5, aim_clusters=1, seed=1)
    assert len(nxt) == 40 and not {u["user_id"] for u in nxt} & set(exposed)
    amplified = [u for u in nxt if u["reason"] == "amplified"]
    assert len(amplified) == round(0.5 * (40 - 4)) and all(_group(u["user_id"]) == 2 for u in amplified)
    assert "engaged" in amplified[0]["why"] and all(u["why"] for u in nxt)


def test_a_short_loop_finds_the_right_group(space: CFSpace, audience: Audience) -> None:
    """Video "good" is placed in group 1 but is loved by group 3; "dull" nobody likes. Group 3 users engage
    with "good" (view + like). After stage 0 "good" is promoted, its vector folds toward group 3 and its
    stage-1 pool comes mostly from group 3."""
    cfg = LadderConfig(first_pool=20, first_pool_share=1.0, growth=(3.0,), exploration=0.5, promote_share=0.5, hold_share=0.0,
                       aim_share=0.5)
    k0, k1 = cfg.pool_sizes(len(space.user_ids))
    prior = np.eye(DIM)[1].astype(np.float32)
    cohort, exps, seen = {}, {}, {}
    for vid in ("good", "dull"):
        ex = exps[vid] = start(vid, True)
        pool = stage_audience(audience, prior, k0, exploration=cfg.exploration, seed=7)
        ex.open_stage(0, pool)
        seen[vid] = [{"user_id": u, "event": e} for u in ex.stage_users if vid == "good" and _group(u) == 3
                     for e in ("view", "like")]
        cohort[vid] = stage_stats(vid, ex.stage_users, seen[vid], known_users=space.user_ids)
    assert cohort["good"].engaged > 0  # exploration reached group 3
    d = decide(cohort, 0, cfg)
    assert (d["good"].action, d["dull"].action) == ("promote", "stop")
    apply(exps["good"], d["good"])
    users = [e["user_id"] for e in seen["good"]]
    w = np.full(len(users), 4.0)
    v, blend = fold_in(prior, space.user_vectors[[space.user_index(u) for u in users]], w, 10.0)
    # group-3 users moved the vector toward axis 3; the axis they do not span keeps the prior's value
    assert v[3] > 0.5 and v[1] == pytest.approx(1.0, abs=0.05) and 0 < blend < 1
    eng = cluster_engagement(audience, exps["good"].exposed, users)
    nxt = stage_audience(audience, v, k1, exps["good"].exposed, eng, 0.1, cfg.aim_share, 1, seed=7)
    exps["good"].open_stage(1, nxt)
    amplified = [u for u in nxt if u["reason"] == "amplified"]
    assert len(amplified) == round(cfg.aim_share * (k1 - 6)) and {_group(u["user_id"]) for u in amplified} == {3}
    assert np.mean([_group(u["user_id"]) == 3 for u in nxt]) > 0.4 and math.isclose(len(nxt), k1)
    assert exps["good"].history[-1]["by_reason"]["amplified"] > 0


def test_exploration_is_per_stage_and_can_stay_adjacent(audience: Audience) -> None:
    """The first pool has no exploration by default; later pools explore, from the next-nearest cluster
    when ``explore_clusters`` says so: a video on axis 1 leaning to axis 2 explores group 2 only."""
    cfg = LadderConfig()
    assert (cfg.exploration_at(0), cfg.exploration_at(1), cfg.exploration_at(2)) == (0.0, 0.1, 0.1)
    assert LadderConfig(first_exploration=None).exploration_at(0) == 0.1
    with pytest.raises(LadderConfigError):
        LadderConfig(first_exploration=1.5)
    v = np.array([0.0, 1.0, 0.5, 0.0], np.float32)
    first = stage_audience(audience, v, 20, exploration=cfg.exploration_at(0), seed=3)
    assert {u["reason"] for u in first} == {"score"} and {_group(u["user_id"]) for u in first} == {1}
    near = stage_audience(audience, v, 20, exploration=0.5, aim_share=0.0, seed=3, explore_clusters=1)
    explored = [u for u in near if u["reason"] == "exploration"]
    assert len(near) == 20 and len(explored) == 10 and {_group(u["user_id"]) for u in explored} == {2}
    far = stage_audience(audience, v, 20, exploration=0.5, aim_share=0.0, seed=3)
    assert {_group(u["user_id"]) for u in far if u["reason"] == "exploration"} == {0, 2, 3}


RATES = [0.9, 0.1, 0.5, 0.0, 0.3, 0.2, 0.8, 0.05, 0.4, 0.6]  # v0 promoted, v6 and v9 held, v3 never engaged
BELOW = {"v1", "v2", "v4", "v5", "v7", "v8"}  # engaged, under the hold band


def _slots(d: dict) -> set[str]:
    return {v for v, x in d.items() if x.extra.get("exploration_slot")}


def test_item_side_exploration_holds_random_engaged_videos_from_below_the_band() -> None:
    cfg = LadderConfig(explore_items=0.2)  # 2 of a cohort of 10
    d = decide(_cohort(RATES), 0, cfg, explore_seed=7)
    slots = _slots(d)
    assert len(slots) == 2 and slots <= BELOW  # never the unengaged v3, never a video already in the band
    assert all(d[v].action == "hold" and d[v].state == "held" and "exploration slot" in d[v].rule for v in slots)
    assert [v for v, x in d.items() if x.action == "promote"] == ["v0"]  # exploration takes no promotion
    assert {v for v, x in d.items() if x.action == "hold"} == {"v6", "v9"} | slots
    assert decide(_cohort(RATES), 0, cfg, explore_seed=7) == d  # seeded: the same draw again
    drawn = set().union(*(_slots(decide(_cohort(RATES), 0, cfg, explore_seed=s)) for s in range(60)))
    assert drawn == BELOW  # uniform over the engaged videos below the band
    assert _slots(decide(_cohort(RATES), 0, cfg)) == set()  # no seed: the rate alone decides
    assert _slots(decide(_cohort([0.0] * 10), 0, cfg, explore_seed=1)) == set()  # nothing engaged: nothing to explore
    with pytest.raises(LadderConfigError, match="explore_items"):
        LadderConfig(explore_items=1.5)


def test_a_held_video_is_decided_again_on_its_pooled_evidence() -> None:
    cfg = LadderConfig()
    assert [cfg.evidence_size(s, 610) for s in range(3)] == [12, 12, 0]  # k0 users; none at the last stage
    assert LadderConfig(evidence_share=0.5).evidence_size(1, 610) == 6
    assert LadderConfig(evidence_share=0.0).evidence_size(0, 610) == 0
    with pytest.raises(LadderConfigError, match="evidence_share"):
        LadderConfig(evidence_share=float("nan"))
    with pytest.raises(LadderConfigError, match="evidence_budget"):
        LadderConfig(evidence_budget=2.0)
    assert (cfg.promote_count(100), cfg.promote_count(3), cfg.promote_count(0)) == (10, 1, 0)
    # held at 0.6 under a promote threshold of 0.9; 10 fresh users: one pools to 1.0, the other to 0.4
    pooled = {"grower": StageStats(20, {"view": 11}, 6.0 + 14.0, 11), "fader": StageStats(20, {"view": 5}, 8.0, 5)}
    d = decide_evidence(pooled, 0, 0.9, cfg)
    assert (d["grower"].action, d["grower"].state) == ("promote", "promoted:1") and "beats" in d["grower"].rule
    assert (d["fader"].action, d["fader"].state) == ("stop", "stopped") and "does not beat" in d["fader"].rule
    assert d["grower"].metrics["impressions"] == 20 and d["grower"].threshold["promote"] == 0.9
    assert decide_evidence(pooled, 2, 0.9, cfg)["grower"].state == "graduated"
    assert {x.action for x in decide_evidence(pooled, 0, None, cfg).values()} == {"stop"}  # nothing to beat
    ex = start("grower", True)
    apply(ex, replace(decide(_cohort([0.95, 0.6] + [0.1] * 8), 0, cfg)["v1"], video_id="grower"))  # held
    assert ex.state == "held"
    apply(ex, d["grower"])  # the evidence decision may decide the held stage again
    assert ex.state == "promoted:1" and [h["action"] for h in ex.history] == ["hold", "promote"]
    with pytest.raises(NotEligibleError, match="not held"):
        apply(ex, d["grower"])
