"""The cold-start loop on vectors and interactions: staged exposure pools, the decision rule, re-entry.

* :mod:`cb2cf.exposure.ladder` - :class:`LadderConfig`, :class:`Exposure` (a video's state and
  history), :class:`StageStats` / :func:`stage_stats` (a stage's engagement), :func:`start`;
* :mod:`cb2cf.exposure.rule` - :func:`decide` (promote / hold / stop against the cohort),
  :func:`creator_prior` (tie-break only),
  :func:`decide_evidence` (held videos again, on their evidence pool), :func:`reenter`, :func:`apply`, :func:`graduate_if_learned`;
* :mod:`cb2cf.exposure.aim` - :func:`stage_audience` (next pool from the current vector, aimed at the
  clusters where engagement was highest, exploration kept), :func:`cluster_engagement`.
"""

from __future__ import annotations

from cb2cf.exposure.aim import best_clusters, cluster_engagement, stage_audience
from cb2cf.exposure.ladder import DEFAULT_EVENT_WEIGHTS, Exposure, LadderConfig, StageStats, stage_stats, start
from cb2cf.exposure.rule import Decision, apply, creator_prior, decide, decide_evidence, graduate_if_learned, reenter

__all__ = ["DEFAULT_EVENT_WEIGHTS", "Decision", "Exposure", "LadderConfig", "StageStats", "apply", "best_clusters",
           "cluster_engagement", "creator_prior", "decide", "decide_evidence",
           "graduate_if_learned", "reenter", "stage_audience",
           "stage_stats", "start"]
