"""A refused request stores nothing: events for a video without a CF vector are refused before any write."""

from __future__ import annotations

import pytest
from serving_helpers import FakePipeline, _FakeResult, planted_space

from tagging.errors import TaggingError
from tagging.serving.hook import HookConfig, UploadHook


def test_interactions_for_a_video_without_cf_vector_are_refused_before_storing(tmp_path) -> None:
    planted_space(n_clusters=2, per_cluster=10, dim=4).save(tmp_path / "space")
    hook = UploadHook(HookConfig(db=str(tmp_path / "db"), space=str(tmp_path / "space"), maintenance_interval_s=None),
                      pipeline=FakePipeline())
    row = _FakeResult("no-cf", "a caption", str(tmp_path / "x.mp4")).to_row()
    row["cf_vector"], row["cf_model_version"] = None, None
    hook.catalog.upsert([row])
    with pytest.raises(TaggingError, match="no CF vector"):
        hook.record_interactions("no-cf", [{"user_id": "c0_u0", "event": "like"}])
    assert hook.interactions.weights("no-cf") == {}  # a retrying client cannot double-count
    hook.close()
