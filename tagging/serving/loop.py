"""The cold-start loop in the service: videos enter exposure pools, stages are decided, late bloomers re-enter.

:class:`ColdStartLoop` puts :mod:`cb2cf.exposure` (pure vectors and interactions) together
with the catalog, the ``interactions`` table and the ``exposure`` table
(:class:`tagging.store.exposure.ExposureStore`):

* :meth:`ColdStartLoop.enter` - a reviewed video with a CF vector gets its first pool;
* :meth:`ColdStartLoop.run` - the periodic job: every active stage whose impressions are in
  (each of its users has an event) or whose time window closed is decided against its cohort
  (the videos decided at the same stage in the same run); promoted videos get their next pool
  from their current (folded-in) vector, held videos (the middle band, and the item-side
  exploration draw) a small evidence pool of fresh users; then held and stopped videos whose
  engagement over all their impressions (evidence pool and late interactions included) beats
  their cohort's promote threshold re-enter;
* :meth:`ColdStartLoop.exposure` - a video's state with the history of its stages and decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from cb2cf.audience import Audience
from cb2cf.errors import CB2CFError
from cb2cf.exposure import (
    Exposure,
    LadderConfig,
    apply,
    cluster_engagement,
    creator_prior,
    decide,
    graduate_if_learned,
    reenter,
    stage_audience,
    stage_stats,
    start,
)
from tagging.errors import MediaNotFound, NotEligible
from tagging.store.exposure import ExposureStore
from tagging.store.interactions import InteractionStore

logger = logging.getLogger(__name__)


class LoopHost(Protocol):
    """What the loop needs of the upload hook."""

    @property
    def interactions(self) -> InteractionStore: ...

    @property
    def space(self) -> Any: ...

    def get(self, video_id: str) -> dict[str, Any] | None: ...

    def item_vector(self, video_id: str) -> dict[str, Any]: ...

    def audience_model(self) -> Audience | None: ...


class ColdStartLoop:
    """Exposure stages for the videos of one catalog.

    Args:
        host: The upload hook (catalog, CF space, interactions, audience model).
        store: The exposure table.
        config: The ladder and decision rule.
    """

    def __init__(self, host: LoopHost, store: ExposureStore, config: LadderConfig | None = None) -> None:
        self.host, self.store, self.config = host, store, config or LadderConfig()

    def _audience(self, video_id: str) -> Audience:
        aud = self.host.audience_model()
        if aud is None:
            raise NotEligible(video_id, "no CF space configured: no exposure pools")
        return aud

    def _pool(self, ex: Exposure, stage: int, engaged: list[str], k: int | None = None) -> list[dict[str, Any]]:
        """The audience of ``ex``'s ``stage`` (``k`` users: default the stage's pool size) from its
        current vector, aimed where it did well."""
        aud = self._audience(ex.video_id)
        state = self.host.item_vector(ex.video_id)
        k = self.config.pool_sizes(len(aud.space.user_ids))[stage] if k is None else k
        eng = cluster_engagement(aud, ex.exposed, engaged) if stage else None
        cfg = self.config
        return stage_audience(aud, np.asarray(state["vector"], np.float32), k, ex.exposed, eng,
                              cfg.exploration_at(stage), cfg.aim_share, cfg.aim_clusters)

    def enter(self, video_id: str, creator_id: str | None = None) -> dict[str, Any]:
        """Put a video into its first pool (no-op for a video already in the loop).

        Raises:
            MediaNotFound: Not in the catalog.
            NotEligible: It failed review, has no CF vector, or there is no CF space.
        """
        row = self.host.get(video_id)
        if row is None:
            raise MediaNotFound(video_id, "video is not in the catalog")
        if self.store.get(video_id) is not None:
            return self.exposure(video_id)
        try:
            ex = start(video_id, row.get("review_passed") is not False, creator_id)
        except CB2CFError as exc:
            raise NotEligible(video_id, str(exc)) from None
        if row.get("cf_vector") is None:
            raise NotEligible(video_id, "video has no CF vector: it cannot be placed in a pool")
        now = datetime.now(UTC)
        ex.open_stage(0, self._pool(ex, 0, []), at=now.timestamp())
        self.store.put([ex], {video_id: now})
        return self.exposure(video_id)

    def exposure(self, video_id: str) -> dict[str, Any]:
        """A video's state, the users of its current stage and its history of stages and decisions.

        Raises:
            MediaNotFound: The video never entered the loop.
        """
        got = self.store.get(video_id)
        if got is None:
            raise MediaNotFound(video_id, "video has no exposure state (it never entered the cold-start loop)")
        ex, opened = got
        sizes = self.config.pool_sizes(len(self.host.space.user_ids)) if self.host.space is not None else []
        return {"video_id": video_id, "state": ex.state, "stage": ex.stage, "stage_opened_at": opened.isoformat(),
                "creator_id": ex.creator_id, "exposed_users": len(ex.exposed), "stage_users": len(ex.stage_users),
                "pool_sizes": sizes, "history": ex.history}

    def _events(self, video_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        got = self.host.interactions.events_many(video_ids)
        return {v: got.get(v, []) for v in video_ids}

    def _due(self, ex: Exposure, opened: datetime, now: datetime, events: list[dict[str, Any]]) -> str | None:
        """``"window"`` (closed), ``"impressions"`` (every stage user has an event) or None."""
        if (now - opened).total_seconds() >= self.config.stage_window_s:
            return "window"
        seen = {e["user_id"] for e in events}
        return "impressions" if ex.stage_users and set(ex.stage_users) <= seen else None

    def _priors(self) -> dict[str, float]:
        """Creator priors from every stored decision (1 promoted / graduated, 0 otherwise)."""
        outcomes: dict[str, list[float]] = {}
        every: list[float] = []
        for ex, _ in self.store.in_states(("",)):
            for h in ex.history:
                if h.get("kind") == "decision" and h.get("action") in ("promote", "graduate", "hold", "stop"):
                    o = float(h["action"] in ("promote", "graduate"))
                    every.append(o)
                    if ex.creator_id:
                        outcomes.setdefault(ex.creator_id, []).append(o)
        mean = float(np.mean(every)) if every else self.config.promote_share
        return {c: creator_prior(o, mean, self.config.prior_strength) for c, o in outcomes.items()} | {"": mean}

    def run(self, now: datetime | None = None, force: bool = False) -> dict[str, Any]:
        """The periodic job: decide the stages that are due, open the next pools, re-enter late bloomers.

        Returns:
            ``{"decided": [decision, ...], "reentered": [...], "graduated": [video_id, ...]}``.
        """
        now = now or datetime.now(UTC)
        active = self.store.in_states(("pool", "promoted"))
        events = self._events([ex.video_id for ex, _ in active])
        by_stage: dict[int, list[tuple[Exposure, datetime]]] = {}
        closed: set[int] = set()
        for ex, opened in active:
            why = "forced" if force else self._due(ex, opened, now, [e for e in events[ex.video_id]
                                                                     if e["user_id"] in set(ex.stage_users)])
            if why:
                by_stage.setdefault(ex.stage, []).append((ex, opened))
                closed |= {ex.stage} if why != "impressions" else set()
        # impressions in but too few videos at that stage to compare: wait for the cohort (or the window)
        by_stage = {s: c for s, c in by_stage.items() if s in closed or len(c) >= self.config.min_cohort}
        priors = self._priors()
        report: dict[str, Any] = {"decided": [], "reentered": [], "graduated": []}
        for stage, cohort in sorted(by_stage.items()):
            cohort.sort(key=lambda eo: eo[1])
            stats = {ex.video_id: stage_stats(ex.video_id, ex.stage_users,
                                              [e for e in events[ex.video_id] if e["user_id"] in set(ex.stage_users)])
                     for ex, _ in cohort}
            pri = {ex.video_id: priors.get(ex.creator_id or "", priors[""]) for ex, _ in cohort}
            decisions = decide(stats, stage, self.config, pri, order=[ex.video_id for ex, _ in cohort],
                               explore_seed=int(now.timestamp()) * 31 + stage)
            self._advance([ex for ex, _ in cohort], decisions, events, now, report)
        self._reenter(events, now, report)
        return report

    def _advance(self, cohort: list[Exposure], decisions: Mapping[str, Any], events: Mapping[str, list[dict[str, Any]]],
                 now: datetime, report: dict[str, Any]) -> None:
        opened: dict[str, datetime] = {}
        for ex in cohort:
            d = decisions[ex.video_id]
            apply(ex, d, at=now.timestamp())
            report["decided"].append(d.as_dict())
            if d.action == "promote":
                ex.open_stage(d.stage + 1, self._pool(ex, d.stage + 1, [e["user_id"] for e in events[ex.video_id]]),
                              at=now.timestamp())
                opened[ex.video_id] = now
            elif d.action == "hold":  # an evidence pool of fresh users; the re-entry check decides it again
                k = self.config.evidence_size(d.stage, len(self._audience(ex.video_id).space.user_ids))
                if k > 0:
                    engaged = [e["user_id"] for e in events[ex.video_id]]
                    ex.open_stage(d.stage, self._pool(ex, d.stage + 1, engaged, k), at=now.timestamp(), evidence=True)
                    opened[ex.video_id] = now
            if ex.state != "graduated":  # a vector that is interaction-based by now leaves the loop
                graduate_if_learned(ex, self.host.item_vector(ex.video_id)["blend"], self.config, now.timestamp())
            if ex.state == "graduated":
                report["graduated"].append(ex.video_id)
        self.store.put(cohort, opened)

    def _reenter(self, events: Mapping[str, list[dict[str, Any]]], now: datetime, report: dict[str, Any]) -> None:
        waiting = self.store.in_states(("held", "stopped"))
        if not waiting:
            return
        evs = self._events([ex.video_id for ex, _ in waiting])
        changed, opened = [], {}
        for ex, _ in waiting:
            last = [h for h in ex.history if h.get("kind") == "decision" and h.get("stage") == ex.stage]
            thr = last[-1]["threshold"].get("promote") if last else None
            total = stage_stats(ex.video_id, ex.exposed, evs[ex.video_id])
            got = reenter({ex.video_id: ex}, {ex.video_id: total}, {ex.stage: thr}, self.config)
            if ex.video_id not in got:
                continue
            d = got[ex.video_id]
            apply(ex, d, at=now.timestamp())
            report["reentered"].append(d.as_dict())
            if d.state.startswith("promoted:"):
                ex.open_stage(ex.stage + 1, self._pool(ex, ex.stage + 1, [e["user_id"] for e in evs[ex.video_id]]),
                              at=now.timestamp())
                opened[ex.video_id] = now
            changed.append(ex)
        self.store.put(changed, opened)
