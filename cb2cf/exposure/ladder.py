"""The exposure ladder: pool sizes, a video's stage state and the engagement of one stage.

A reviewed upload enters a first pool of ``k0`` users; the best of each cohort are
promoted to a pool ``growth[0]`` times larger, then ``growth[1]`` times larger, and so on.
States:

* ``pool`` - in its first pool (stage 0);
* ``promoted:N`` - promoted into stage ``N`` (N >= 1);
* ``held`` - between the cohort's promotion and stop thresholds: gets a small evidence pool of
  fresh users (``LadderConfig.evidence_share`` of the first pool, from its current vector) and
  is decided again on the pooled evidence (:func:`cb2cf.exposure.rule.decide_evidence`); late
  interactions count too (:func:`cb2cf.exposure.rule.reenter` looks at it again);
* ``stopped`` - below the hold band: no further pool (re-entry may bring it back);
* ``graduated`` - its vector is interaction-based now (promoted past the last stage, or
  its fold-in blend reached ``graduate_blend``): it leaves the cold-start loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cb2cf.errors import InteractionLogError, LadderConfigError, NotEligibleError, UnknownIdError

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "completion": 2.0, "like": 3.0, "share": 4.0}
"""The fold-in's event weights (:class:`cb2cf.foldin.FoldInConfig`), used for engagement too."""

ACTIVE_STATES = ("pool", "promoted")
"""Prefixes of the states whose current stage is still collecting impressions."""


@dataclass
class LadderConfig:
    """Exposure-ladder settings.

    Attributes:
        first_pool: ``k0`` on a real user base (a few hundred users).
        first_pool_share: ``k0`` as a share of the users on a small base: the first pool is
            ``min(first_pool, max(1, round(first_pool_share * n_users)))``.
        growth: Each next pool is this many times the previous one (default x10, x10:
            three stages). Every factor must be > 1.
        promote_share: Top share of a cohort promoted to the next stage.
        hold_share: The next share below it is held for more evidence; the rest stop.
        evidence_share: A held video's evidence pool, as a share of the first pool ``k0`` (a
            second small pool at any stage; 0: held videos only wait for late interactions). No
            evidence pool at the last stage. The platform pays for evidence pools out of the next
            stage's budget (see docs/coldstart-loop.md), so the ladder spends what it spent without them.
        evidence_budget: At most this share of a cohort's next-stage budget goes to evidence pools
            (held videos in rank order, then the exploration draws), so the promoted videos keep
            most of their next pool.
        explore_items: Item-side exploration: this share of a cohort is drawn at random from the
            videos that had engagement but fell below the hold band, and held (an evidence pool
            and a second decision) as if they were in it: new and niche videos whose first pool
            found few of their few fans get another chance. 0: the rate alone decides.
        min_rate: A video whose engagement per impression is not above this never moves up.
        exploration: Share of each later pool (stage >= 1) drawn from interest clusters far from the video.
        first_exploration: Exploration share of the first pool (None: ``exploration``). The
            first pool is small and most videos never leave it, so every slot spent there costs
            reach directly (see docs/coldstart-loop.md).
        explore_clusters: Exploration draws from this many clusters next nearest after the
            video's nearest ones (None: from every far cluster).
        aim_share: Share of the non-exploration slots of a later pool aimed at the
            clusters where the video's engagement was highest.
        aim_clusters: How many of those clusters.
        prior_strength: Pseudo-count of the creator prior's shrinkage toward the global mean.
        graduate_blend: Fold-in blend at which a video's vector counts as interaction-based.
        stage_window_s: A stage's time window: after it the stage is decided with what came in.
        min_cohort: Stages whose impressions are in wait for this many videos at the same stage
            before they are decided together (a closed window decides them anyway).
    """

    first_pool: int = 300
    first_pool_share: float = 0.02
    growth: tuple[float, ...] = (10.0, 10.0)
    promote_share: float = 0.1
    hold_share: float = 0.2
    evidence_share: float = 1.0
    evidence_budget: float = 0.5
    explore_items: float = 0.1
    min_rate: float = 0.0
    exploration: float = 0.1
    first_exploration: float | None = 0.0
    explore_clusters: int | None = 2
    aim_share: float = 0.25
    aim_clusters: int = 2
    prior_strength: float = 5.0
    graduate_blend: float = 0.9
    stage_window_s: float = 3600.0
    min_cohort: int = 10

    def __post_init__(self) -> None:
        self.growth = tuple(float(g) for g in self.growth)
        self.validate()

    def validate(self) -> None:
        """Check the settings.

        Raises:
            LadderConfigError: A pool that does not grow, an empty first pool, or a share outside [0, 1].
        """
        if self.first_pool < 1:
            raise LadderConfigError(f"ladder: first_pool must be >= 1, got {self.first_pool}")
        bad = [g for g in self.growth if not (math.isfinite(g) and g > 1.0)]
        if bad:
            raise LadderConfigError(f"ladder: every growth factor must be > 1 (the ladder must grow), got {list(self.growth)}")
        for name in ("first_pool_share", "promote_share", "hold_share", "evidence_budget", "explore_items", "exploration",
                     "aim_share", "graduate_blend"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and 0.0 <= v <= 1.0):
                raise LadderConfigError(f"ladder: {name} must be in [0, 1], got {v}")
        if not (math.isfinite(float(self.evidence_share)) and self.evidence_share >= 0):
            raise LadderConfigError(f"ladder: evidence_share must be a finite number >= 0, got {self.evidence_share}")
        if self.first_exploration is not None and not 0.0 <= float(self.first_exploration) <= 1.0:
            raise LadderConfigError(f"ladder: first_exploration must be in [0, 1], got {self.first_exploration}")
        if self.promote_share + self.hold_share > 1.0:
            raise LadderConfigError("ladder: promote_share + hold_share must be <= 1")
        if self.first_pool_share == 0.0 or self.promote_share == 0.0:
            raise LadderConfigError("ladder: first_pool_share and promote_share must be > 0")

    @property
    def n_stages(self) -> int:
        """Number of stages (pools) of the ladder."""
        return len(self.growth) + 1

    def exploration_at(self, stage: int) -> float:
        """The exploration share of ``stage``'s pool."""
        if stage == 0 and self.first_exploration is not None:
            return float(self.first_exploration)
        return float(self.exploration)

    def pool_sizes(self, n_users: int) -> list[int]:
        """The pool size of every stage for a user base of ``n_users`` (uncapped; callers cap by who is left)."""
        k = min(self.first_pool, max(1, round(self.first_pool_share * n_users)))
        sizes = [int(k)]
        for g in self.growth:
            sizes.append(int(round(sizes[-1] * g)))
        return sizes

    def promote_count(self, n: int) -> int:
        """Videos promoted by rate from a cohort of ``n`` (at least one; fewer when fewer qualify)."""
        return min(int(n), max(1, math.ceil(self.promote_share * n - 1e-9)))

    def evidence_size(self, stage: int, n_users: int) -> int:
        """The evidence pool of a video held at ``stage`` (0 at the last stage: nothing later pays for it)."""
        if stage >= self.n_stages - 1:
            return 0
        return round(self.evidence_share * self.pool_sizes(n_users)[0])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return asdict(self) | {"growth": list(self.growth)}


@dataclass
class StageStats:
    """Engagement of one video in one stage.

    Attributes:
        impressions: Users shown the video in the stage.
        counts: Events per kind (view, completion, like, share).
        weight: Summed event weights.
        engaged: Users with at least one event.
    """

    impressions: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    weight: float = 0.0
    engaged: int = 0

    @property
    def rate(self) -> float:
        """Engagement per impression (summed event weight / impressions; 0 without impressions)."""
        return self.weight / self.impressions if self.impressions else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The metrics a decision reports."""
        return {"impressions": self.impressions, **{k: int(self.counts.get(k, 0)) for k in DEFAULT_EVENT_WEIGHTS},
                "engaged_users": self.engaged, "weight": round(self.weight, 6), "rate": round(self.rate, 6)}


def stage_stats(video_id: str, exposed: Iterable[str], events: Iterable[Mapping[str, Any]],
                event_weights: Mapping[str, float] | None = None, known_users: Iterable[str] | None = None) -> StageStats:
    """Count one stage's events: ``{"user_id", "event", "weight"?}`` against the users shown the video.

    Args:
        video_id: The video (named in errors).
        exposed: Users shown the video in this stage (the impressions).
        events: The stage's events; a user outside ``exposed`` (organic traffic) counts but adds no impression.
        event_weights: Weight per event kind (default :data:`DEFAULT_EVENT_WEIGHTS`).
        known_users: When given, every event's user must be one of them.

    Raises:
        InteractionLogError: An unknown event kind, or a negative / NaN / infinite weight.
        UnknownIdError: A user not in ``known_users``.
    """
    weights = dict(event_weights or DEFAULT_EVENT_WEIGHTS)
    known = None if known_users is None else set(map(str, known_users))
    stats = StageStats(impressions=len(set(map(str, exposed))))
    users: set[str] = set()
    for e in events:
        kind, user = str(e.get("event", "")), str(e.get("user_id", ""))
        if kind not in weights:
            raise InteractionLogError(f"video {video_id!r}: unknown event {kind!r}; expected one of {sorted(weights)}")
        if known is not None and user not in known:
            raise UnknownIdError(f"video {video_id!r}: user {user!r} is not known")
        w = float(e["weight"]) if e.get("weight") is not None else weights[kind]
        if not math.isfinite(w) or w < 0:
            raise InteractionLogError(f"video {video_id!r}: event weight must be a finite number >= 0, got {w}")
        stats.counts[kind] = stats.counts.get(kind, 0) + 1
        stats.weight += w
        users.add(user)
    stats.engaged = len(users)
    return stats


@dataclass
class Exposure:
    """One video's place on the ladder and the history of its stages and decisions.

    Attributes:
        video_id: The video.
        state: ``pool``, ``promoted:N``, ``held``, ``stopped`` or ``graduated``.
        stage: The current (or last) stage index.
        creator_id: Its creator (for the creator prior), if known.
        exposed: Every user shown the video so far, in order.
        stage_users: Users of the current stage.
        history: One dict per event: ``{"kind": "stage" | "decision" | "reentry", ...}``.
    """

    video_id: str
    state: str = "pool"
    stage: int = 0
    creator_id: str | None = None
    exposed: list[str] = field(default_factory=list)
    stage_users: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """True while the current stage is collecting impressions."""
        return self.state == "pool" or self.state.startswith("promoted:")

    def open_stage(self, stage: int, users: list[dict[str, Any]], at: float | None = None,
                   evidence: bool = False) -> None:
        """Record the audience of a new stage (entries of :func:`cb2cf.exposure.aim.stage_audience`),
        or with ``evidence`` the evidence pool of a video held at ``stage``."""
        ids = [str(u["user_id"]) for u in users]
        self.stage, self.stage_users = int(stage), ids
        self.exposed += [u for u in ids if u not in set(self.exposed)]
        why: dict[str, int] = {}
        for u in users:
            why[str(u["reason"])] = why.get(str(u["reason"]), 0) + 1
        self.history.append({"kind": "stage", "stage": int(stage), "state": self.state, "users": len(ids),
                             "by_reason": why, "at": at} | ({"evidence": True} if evidence else {}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Exposure:
        """The inverse of :meth:`to_dict`."""
        return cls(**{k: d[k] for k in ("video_id", "state", "stage", "creator_id", "exposed", "stage_users", "history")
                      if k in d})


def start(video_id: str, review_passed: bool, creator_id: str | None = None) -> Exposure:
    """A video's entry into the cold-start loop (state ``pool``, stage 0).

    Every reviewed video gets its first pool; nothing about its creator can block it.

    Raises:
        NotEligibleError: The video did not pass the review gate.
    """
    if not review_passed:
        raise NotEligibleError(f"video {video_id!r} did not pass review: it never enters an exposure pool")
    return Exposure(str(video_id), "pool", 0, creator_id)
