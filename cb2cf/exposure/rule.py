"""The stage decision rule, the creator prior and re-entry: every decision with its reasons as data.

After a stage, each video of a cohort (the videos decided at the same stage together) is
ranked by its engagement per impression. The top ``promote_share`` move up a stage
(``graduated`` after the last one), the next ``hold_share`` are ``held`` and the rest
``stopped``; a video whose rate is not above ``min_rate`` never moves up. Equal rates are
ordered by the creator prior, then by arrival: the prior only breaks ties, it never moves a
video past a better one and never keeps a video out of its first pool.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cb2cf.errors import NotEligibleError, UnknownIdError
from cb2cf.exposure.ladder import Exposure, LadderConfig, StageStats


@dataclass
class Decision:
    """One stage decision and why.

    Attributes:
        video_id: The video.
        stage: The stage decided.
        action: ``promote``, ``hold``, ``stop``, ``graduate`` or ``reenter``.
        state: The video's state after it.
        metrics: The stage's metrics (:meth:`StageStats.as_dict`).
        threshold: The cohort's thresholds: ``{"promote": rate, "hold": rate, "min_rate": ...}``.
        cohort: Cohort size and the video's rank in it (1 = best).
        rule: The rule that fired, in words.
        tie_break: The creator prior decided the order against a video with the same rate.
        prior: The creator prior used.
    """

    video_id: str
    stage: int
    action: str
    state: str
    metrics: dict[str, Any]
    threshold: dict[str, float | None]
    cohort: dict[str, int]
    rule: str
    tie_break: bool = False
    prior: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready decision (the ``"kind": "decision"`` history entry)."""
        return {"kind": "decision", "video_id": self.video_id, "stage": self.stage, "action": self.action,
                "state": self.state, "metrics": self.metrics, "threshold": self.threshold, "cohort": self.cohort,
                "rule": self.rule, "tie_break": self.tie_break, "prior": self.prior} | self.extra


def creator_prior(outcomes: Sequence[float], global_mean: float, strength: float = 5.0) -> float:
    """A creator's past stage outcomes (1 promoted, 0 not) shrunk toward the global mean.

    ``(sum(outcomes) + strength * global_mean) / (len(outcomes) + strength)``: a new creator
    starts exactly at the mean; it takes many stages to move far from it.
    """
    if strength <= 0:
        raise ValueError("prior strength must be > 0")
    return float((sum(float(o) for o in outcomes) + strength * global_mean) / (len(outcomes) + strength))


def _counts(n: int, cfg: LadderConfig) -> tuple[int, int]:
    """(promoted, promoted + held) of a cohort of ``n``: at least one promoted when anyone qualifies."""
    n_up = cfg.promote_count(n)
    n_hold = max(n_up, math.ceil((cfg.promote_share + cfg.hold_share) * n - 1e-9))
    return n_up, min(n_hold, n)


def decide(cohort: Mapping[str, StageStats], stage: int, config: LadderConfig | None = None,
           priors: Mapping[str, float] | None = None, order: Sequence[str] | None = None,
           explore_seed: int | None = None) -> dict[str, Decision]:
    """Decide one cohort of videos at one stage.

    Args:
        cohort: Each video's stats for ``stage``.
        stage: The stage just finished (0 = first pool).
        config: Ladder settings.
        priors: Creator prior per video (missing: the global mean, i.e. no advantage).
        order: Arrival order (earlier first) for the last tie-break; default: the mapping's order.
        explore_seed: Seed of item-side exploration: with ``config.explore_items > 0``, that share of
            the cohort is drawn at random from the videos the rule would stop although they had
            engagement, and held instead (an evidence pool; ``extra["exploration_slot"] = True``).
            None: no item-side exploration.

    Returns:
        ``{video_id: Decision}``.

    Raises:
        UnknownIdError: ``order`` names a video that is not in the cohort.
    """
    cfg = config or LadderConfig()
    priors = priors or {}
    ids = list(order) if order is not None else list(cohort)
    missing = [v for v in ids if v not in cohort]
    if missing:
        raise UnknownIdError(f"videos {missing[:5]} are not in the cohort")
    base = sum(priors.values()) / len(priors) if priors else 0.0
    pri = {v: float(priors.get(v, base)) for v in ids}
    arrival = {v: i for i, v in enumerate(ids)}
    ranked = sorted(ids, key=lambda v: (-cohort[v].rate, -pri[v], arrival[v]))
    n_up, n_hold = _counts(len(ranked), cfg)
    qualifies = [v for v in ranked if cohort[v].rate > cfg.min_rate]
    up = set(qualifies[:n_up])
    held = set(qualifies[n_up:n_hold])
    slots = _explore_slots(qualifies[n_hold:], cfg.explore_items, len(ranked), explore_seed)
    held |= slots
    thr = {"promote": _cut(cohort, ranked, n_up, cfg.min_rate), "hold": _cut(cohort, ranked, n_hold, cfg.min_rate),
           "min_rate": cfg.min_rate}
    action = {v: "promote" if v in up else "hold" if v in held else "stop" for v in ranked}
    out = {}
    for rank, v in enumerate(ranked, 1):
        rate = cohort[v].rate
        # the prior (or arrival) decided: a video with the same rate got another action
        tie = any(cohort[w].rate == rate and action[w] != action[v] for w in ranked if w != v)
        act, state, rule = _outcome(action[v], rate, stage, len(ranked), thr, cfg, v in slots)
        if tie:
            rule += "; the creator prior, then arrival order, broke a tie at this rate"
        out[v] = Decision(v, stage, act, state, cohort[v].as_dict(), thr, {"size": len(ranked), "rank": rank},
                          rule, tie_break=tie, prior=round(pri[v], 6),
                          extra={"exploration_slot": True} if v in slots else {})
    return out


def _outcome(action: str, rate: float, stage: int, n: int, thr: Mapping[str, float | None], cfg: LadderConfig,
             drawn: bool) -> tuple[str, str, str]:
    """(action, state, the rule in words) of one video of a cohort of ``n``."""
    if action == "promote":
        last = stage >= cfg.n_stages - 1
        act, state = ("graduate", "graduated") if last else ("promote", f"promoted:{stage + 1}")
        return act, state, (f"rate {rate:.4g} in the top {cfg.promote_share:.0%} of {n} videos at stage {stage} "
                            f"(promote threshold {thr['promote']:.4g})")
    if action == "hold" and drawn:
        return "hold", "held", (f"exploration slot: rate {rate:.4g} is below the hold threshold {thr['hold']:.4g}, "
                                f"but the video was drawn at random from those with engagement: held for more evidence")
    if action == "hold":
        return "hold", "held", (f"rate {rate:.4g} below the promote threshold {thr['promote']:.4g} but in the next "
                                f"{cfg.hold_share:.0%} (hold threshold {thr['hold']:.4g}): held for more evidence")
    return "stop", "stopped", (f"rate {rate:.4g} not above the minimum {cfg.min_rate:.4g}" if rate <= cfg.min_rate
                               else f"rate {rate:.4g} below the hold threshold {thr['hold']:.4g} of {n} videos")


def _explore_slots(below: list[str], share: float, n: int, seed: int | None) -> set[str]:
    """Item-side exploration: ``round(share * n)`` videos drawn at random (``seed``) from ``below``
    (engaged videos under the hold band, the ones the rate alone would stop)."""
    if seed is None or share <= 0 or not below:
        return set()
    m = min(len(below), round(share * n))
    return {below[i] for i in np.random.default_rng(seed).choice(len(below), m, replace=False)}


def decide_evidence(pooled: Mapping[str, StageStats], stage: int, threshold: float | None,
                    config: LadderConfig | None = None) -> dict[str, Decision]:
    """Decide held videos again on their pooled evidence (the stage's pool plus the evidence pool).

    A held video whose pooled engagement per impression beats its cohort's promote threshold
    (the rate it fell short of) moves up a stage; the others stop (late interactions can still
    bring them back: :func:`reenter`).

    Args:
        pooled: Each held video's stats over its stage pool and its evidence pool together.
        stage: The stage the videos were held at.
        threshold: The cohort's promote threshold at that stage (``Decision.threshold["promote"]``).
        config: Ladder settings.

    Returns:
        ``{video_id: Decision}`` with action ``promote`` (or ``graduate`` after the last stage) or ``stop``.
    """
    cfg = config or LadderConfig()
    bar = max(threshold if threshold is not None else math.inf, cfg.min_rate)
    last = stage >= cfg.n_stages - 1
    out = {}
    for v, st in pooled.items():
        up = st.rate > bar
        act, state = (("graduate", "graduated") if last else ("promote", f"promoted:{stage + 1}")) if up else \
            ("stop", "stopped")
        rule = (f"held at stage {stage}; with its evidence pool the pooled rate {st.rate:.4g} over "
                f"{st.impressions} impressions {'beats' if up else 'does not beat'} the cohort's promote threshold "
                f"{bar:.4g}" + (": promoted" if up else ": stops"))
        out[v] = Decision(v, stage, act, state, st.as_dict(), {"promote": threshold, "min_rate": cfg.min_rate},
                          {"size": len(pooled), "rank": 0}, rule, extra={"evidence": True})
    return out


def _cut(cohort: Mapping[str, StageStats], ranked: list[str], n: int, floor: float) -> float | None:
    """The rate of the ``n``-th ranked video (the cohort's threshold, at least ``floor``); None for an empty cohort."""
    return round(max(cohort[ranked[n - 1]].rate, floor), 6) if ranked and n else None


def apply(exposure: Exposure, decision: Decision, at: float | None = None) -> Exposure:
    """Move a video to the decision's state and add the decision to its history.

    Raises:
        NotEligibleError: The decision is for another video or another stage, the stage is already
            decided (a re-entry or an evidence decision for a held video may decide it again), or the
            video is graduated.
    """
    if decision.video_id != exposure.video_id:
        raise NotEligibleError(f"decision for {decision.video_id!r} applied to {exposure.video_id!r}")
    if exposure.state == "graduated":
        raise NotEligibleError(f"video {exposure.video_id!r} has graduated: no more stage decisions")
    again = decision.action == "reenter" or bool(decision.extra.get("evidence"))  # a second look at a decided stage
    if decision.extra.get("evidence") and exposure.state != "held":
        raise NotEligibleError(f"video {exposure.video_id!r} is {exposure.state}, not held: no evidence decision")
    if decision.action != "reenter" and decision.stage != exposure.stage:
        raise NotEligibleError(f"video {exposure.video_id!r} is at stage {exposure.stage}, not {decision.stage}")
    if not again and any(h.get("kind") == "decision" and h.get("stage") == decision.stage
                                            and h.get("action") != "reenter" for h in exposure.history):
        raise NotEligibleError(f"video {exposure.video_id!r}: stage {decision.stage} is already decided")
    exposure.state = decision.state
    exposure.history.append(decision.as_dict() | {"at": at})
    return exposure


def graduate_if_learned(exposure: Exposure, blend: float, config: LadderConfig | None = None,
                        at: float | None = None) -> bool:
    """Graduate a video whose fold-in blend reached ``graduate_blend`` (its vector is interaction-based)."""
    cfg = config or LadderConfig()
    if exposure.state == "graduated" or blend < cfg.graduate_blend:
        return False
    exposure.state = "graduated"
    exposure.history.append({"kind": "decision", "video_id": exposure.video_id, "stage": exposure.stage,
                             "action": "graduate", "state": "graduated", "metrics": {"blend": round(blend, 6)},
                             "threshold": {"graduate_blend": cfg.graduate_blend}, "rule":
                             f"fold-in blend {blend:.3f} >= {cfg.graduate_blend}: the vector is interaction-based",
                             "at": at})
    return True


def reenter(exposures: Mapping[str, Exposure], totals: Mapping[str, StageStats],
            thresholds: Mapping[int, float | None], config: LadderConfig | None = None) -> dict[str, Decision]:
    """Re-check held and stopped videos: one whose engagement (late interactions included) beats the
    promote threshold of its cohort at the stage where it stopped re-enters the next stage.

    Args:
        exposures: Videos to look at (only ``held`` and ``stopped`` ones are considered).
        totals: Each video's engagement over all its impressions so far, late events included.
        thresholds: The promote threshold of the cohort each stage was decided against.
        config: Ladder settings.

    Returns:
        ``{video_id: Decision}`` with action ``reenter`` for the videos that come back.
    """
    cfg = config or LadderConfig()
    out = {}
    for vid, ex in exposures.items():
        if ex.state not in ("held", "stopped") or vid not in totals:
            continue
        thr = thresholds.get(ex.stage)
        rate = totals[vid].rate
        if thr is None or rate <= max(thr, cfg.min_rate):
            continue
        last = ex.stage >= cfg.n_stages - 1
        state = "graduated" if last else f"promoted:{ex.stage + 1}"
        out[vid] = Decision(vid, ex.stage, "reenter", state, totals[vid].as_dict(),
                            {"promote": thr, "min_rate": cfg.min_rate}, {"size": 0, "rank": 0},
                            f"was {ex.state} at stage {ex.stage}; rate {rate:.4g} with late interactions beats the "
                            f"cohort's promote threshold {thr:.4g}: re-enters")
    return out
