"""One contract shared by every enrichment part (speech, on-screen text, review).

Each part: on media that has its input it returns a result that serialises to JSON for
the row and is the same on a second run; on media that lacks its input it is skipped
(None) without an error; its time is always recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagging.enrich.enricher import Enricher, Enrichment
from tagging.media import DecodedMedia, decode

PARTS = {"speech": "transcript", "ocr": "ocr", "review": "review"}


@pytest.fixture(scope="module")
def media(clips: dict[str, Path]) -> dict[str, DecodedMedia]:
    return {name: decode(clips[name], num_frames=4) for name in ("good", "audio_only", "video_only")}


def _run(enricher: Enricher, m: DecodedMedia) -> tuple[Enrichment, dict[str, float], dict[str, str]]:
    timings: dict[str, float] = {}
    errors: dict[str, str] = {}
    # speech_ratio 1.0 makes the speech part run on any audio track
    return enricher.run(m, 1.0 if m.audio is not None else None, timings, errors), timings, errors


def _as_json(value: object) -> str:
    items = value if isinstance(value, list) else [value]
    return json.dumps([v.to_dict() for v in items], sort_keys=True)


@pytest.mark.parametrize("part", list(PARTS))
class TestEnricherContract:
    def test_result_serialises_and_repeats(self, part: str, pipeline, media: dict[str, DecodedMedia]) -> None:
        out, timings, errors = _run(pipeline.enricher, media["good"])
        again, _, _ = _run(pipeline.enricher, media["good"])
        value = getattr(out, PARTS[part])
        assert part not in errors, errors
        assert value is not None and part in timings
        assert _as_json(value) == _as_json(getattr(again, PARTS[part]))

    def test_missing_input_skips_the_part_without_error(self, part: str, pipeline, media: dict[str, DecodedMedia]) -> None:
        lacking = {"speech": "video_only", "ocr": "audio_only", "review": None}[part]
        if lacking is None:
            pytest.skip("review runs on every decoded file")
        out, _, errors = _run(pipeline.enricher, media[lacking])
        assert getattr(out, PARTS[part]) is None and part not in errors
