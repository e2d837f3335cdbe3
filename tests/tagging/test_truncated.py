"""A file cut short that still decodes in part is stored with its real extent and a ``truncated`` review flag."""

from __future__ import annotations

import json
from pathlib import Path

import media_factory as mf
import pytest

from tagging.media import decode, probe


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("cut")
    whole = mf.make_video(d / "whole.mp4", seconds=5.0, fps=15, faststart=True, audio_kind="tone")
    return whole, mf.truncate(whole, d / "cut.mp4", 0.55)


def test_decode_reports_the_real_extent(cut: tuple[Path, Path]) -> None:
    whole, part = cut
    assert decode(whole, num_frames=4).truncated_at is None
    media = decode(part, num_frames=4)
    assert probe(part).duration_s == pytest.approx(5.0, abs=0.1)  # the header still says 5 s
    assert media.truncated_at is not None and 1.0 < media.truncated_at < 4.0
    assert media.timestamps[-1] <= media.truncated_at + 0.1


def test_the_row_stores_the_extent_and_the_flag(cut: tuple[Path, Path], pipeline) -> None:
    whole, part = cut
    row = pipeline.analyze(part).to_row()
    review = json.loads(row["review_json"])
    assert row["duration_s"] < 4.0 and review["values"]["duration_s"] == row["duration_s"]
    assert review["flags"]["truncated"] is True and "truncated" in review["blocking"] and row["review_passed"] is False
    assert review["values"]["header_duration_s"] == pytest.approx(5.0, abs=0.1)
    ok = json.loads(pipeline.analyze(whole).to_row()["review_json"])
    assert ok["flags"]["truncated"] is False and "header_duration_s" not in ok["values"]
