"""The cold-start loop in the service: exposure pools, stage decisions, re-entry and the exposure table,
on a real hook, LanceDB in a tmp dir and a planted CF space whose right answers are known."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_helpers import FakePipeline, planted_space, write_row

from cb2cf.audience import AudienceConfig
from cb2cf.exposure import LadderConfig
from tagging.errors import MediaNotFound, NotEligible
from tagging.serving.hook import HookConfig, UploadHook
from tagging.serving.loop import ColdStartLoop
from tagging.store.exposure import ExposureStore

LADDER = LadderConfig(first_pool=10, first_pool_share=1.0, growth=(3.0,), exploration=0.2, hold_share=0.0,
                      min_cohort=3)


@pytest.fixture()
def loop(tmp_path: Path):
    planted_space(n_clusters=4, per_cluster=30, dim=4).save(tmp_path / "space")
    cfg = HookConfig(db=str(tmp_path / "db"), space=str(tmp_path / "space"), maintenance_interval_s=None,
                     audience=AudienceConfig(n_clusters=4, near_clusters=1))
    with UploadHook(cfg, pipeline=FakePipeline()) as hook:
        for vid in ("good", "mid", "dull"):
            write_row(hook, vid, [0.0, 0.0, 0.0, 1.0])  # placed in cluster 3
        write_row(hook, "flagged", [0.0, 0.0, 0.0, 1.0], review_passed=False)
        yield ColdStartLoop(hook, ExposureStore(cfg.db), LADDER), hook


def _events(users: list[str], kinds: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"user_id": u, "event": k} for u in users for k in kinds]


def test_first_pools_decisions_and_next_pool(loop) -> None:
    lp, hook = loop
    for vid in ("good", "mid", "dull"):
        state = lp.enter(vid, creator_id="new-creator")
        assert state["state"] == "pool" and state["stage_users"] == 10 and state["pool_sizes"] == [10, 30]
    assert lp.enter("good")["history"] == lp.exposure("good")["history"]  # entering twice changes nothing
    pool = {v: lp.store.get(v)[0].stage_users for v in ("good", "mid", "dull")}
    # the first pool has no exploration by default (first_exploration 0): all 10 by score, from cluster 3
    assert sum(u.startswith("c3_") for u in pool["good"]) == 10
    hook.record_interactions("good", _events(pool["good"], ("view", "like")))  # rate 4 per impression
    hook.record_interactions("mid", _events(pool["mid"][:2], ("view",)))  # rate 0.2
    # "good" has all its impressions, but one video is no cohort (min_cohort 3) and the window is open: wait
    assert lp.run()["decided"] == []
    report = lp.run(force=True)
    got = {d["video_id"]: d for d in report["decided"]}
    assert {v: d["action"] for v, d in got.items()} == {"good": "promote", "mid": "stop", "dull": "stop"}
    assert got["good"]["metrics"]["rate"] == pytest.approx(4.0) and got["good"]["metrics"]["like"] == 10
    assert got["good"]["threshold"]["promote"] == pytest.approx(4.0) and "top 10%" in got["good"]["rule"]
    assert "not above the minimum" in got["dull"]["rule"] and got["good"]["cohort"] == {"size": 3, "rank": 1}
    good = lp.exposure("good")
    assert good["state"] == "promoted:1" and good["stage"] == 1 and good["stage_users"] == 30
    ex = lp.store.get("good")[0]
    assert not set(ex.stage_users) & set(pool["good"]) and len(ex.exposed) == 40
    assert [h["kind"] for h in good["history"]] == ["stage", "decision", "stage"]
    assert good["history"][-1]["by_reason"].get("exploration") == 6  # later pools keep the exploration share (20%)
    assert lp.exposure("dull")["state"] == "stopped"


def test_a_late_bloomer_re_enters(loop) -> None:
    lp, hook = loop
    for vid in ("good", "mid", "dull"):
        lp.enter(vid)
    good_pool = lp.store.get("good")[0].stage_users
    hook.record_interactions("good", _events(good_pool, ("view", "like")))
    lp.run(force=True)
    assert lp.exposure("mid")["state"] == "stopped"
    late = [f"c3_u{i}" for i in range(15, 30)]  # organic traffic: 15 users share it (60 / 10 impressions = 6 > 4)
    hook.record_interactions("mid", _events(late, ("share",)))
    report = lp.run()
    assert [d["video_id"] for d in report["reentered"]] == ["mid"]
    d = report["reentered"][0]
    assert d["action"] == "reenter" and d["state"] == "promoted:1" and d["threshold"]["promote"] == pytest.approx(4)
    mid = lp.exposure("mid")
    assert mid["state"] == "promoted:1" and mid["stage_users"] == 30 and mid["history"][-2]["kind"] == "decision"
    assert lp.run()["reentered"] == []  # "dull" had nothing late


def test_refused_videos_write_nothing_and_delete_removes_the_state(loop) -> None:
    lp, _ = loop
    with pytest.raises(NotEligible, match="review"):
        lp.enter("flagged")
    with pytest.raises(MediaNotFound):
        lp.enter("nope")
    assert lp.store.get("flagged") is None and lp.store.get("nope") is None
    lp.enter("good")
    assert lp.store.delete("good") == 1 and lp.store.get("good") is None and lp.store.delete("good") == 0
    with pytest.raises(MediaNotFound, match="never entered"):
        lp.exposure("good")


def test_placing_a_text_needs_a_model_with_a_text_view() -> None:
    from tagging.coldstart import place_text

    with pytest.raises(NotEligible, match="text"):
        place_text(None, None, "exam revision", "u1")


def test_a_held_video_gets_an_evidence_pool_and_re_enters_on_it(tmp_path: Path) -> None:
    planted_space(n_clusters=4, per_cluster=30, dim=4).save(tmp_path / "space")
    cfg = HookConfig(db=str(tmp_path / "db"), space=str(tmp_path / "space"), maintenance_interval_s=None,
                     audience=AudienceConfig(n_clusters=4, near_clusters=1))
    ladder = LadderConfig(first_pool=10, first_pool_share=1.0, growth=(3.0,), hold_share=0.4, explore_items=0.0,
                          min_cohort=3)
    with UploadHook(cfg, pipeline=FakePipeline()) as hook:
        for vid in ("good", "mid", "dull"):
            write_row(hook, vid, [0.0, 0.0, 0.0, 1.0])
        lp = ColdStartLoop(hook, ExposureStore(cfg.db), ladder)
        for vid in ("good", "mid", "dull"):
            lp.enter(vid)
        first = {v: list(lp.store.get(v)[0].stage_users) for v in ("good", "mid")}
        hook.record_interactions("good", _events(first["good"], ("view", "like")))  # rate 4
        hook.record_interactions("mid", _events(first["mid"][:4], ("view",)))  # rate 0.4: the middle band
        got = {d["video_id"]: d["action"] for d in lp.run(force=True)["decided"]}
        assert got == {"good": "promote", "mid": "hold", "dull": "stop"}
        mid = lp.exposure("mid")
        assert mid["state"] == "held" and mid["stage"] == 0 and mid["stage_users"] == 10  # k0 fresh users
        assert mid["history"][-1]["kind"] == "stage" and mid["history"][-1]["evidence"] is True
        evidence = lp.store.get("mid")[0].stage_users
        assert not set(evidence) & set(first["mid"]) and lp.exposure("dull")["stage_users"] == 10  # stopped: no pool
        assert lp.run()["reentered"] == []  # 4 / 20 impressions: still under the promote threshold of 4
        hook.record_interactions("mid", _events(evidence, ("view", "completion", "like", "share")))  # (4 + 100) / 20
        report = lp.run()
        assert [d["video_id"] for d in report["reentered"]] == ["mid"] and "5.2 with late" in report["reentered"][0]["rule"]
        assert lp.exposure("mid")["state"] == "promoted:1" and lp.exposure("mid")["stage_users"] == 30
