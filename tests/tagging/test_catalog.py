"""A real LanceDB round trip: write, read back, search by vector, upsert twice, safe filters."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from tagging.errors import CatalogError, InvalidVideoId
from tagging.store.catalog import Catalog, CatalogDims, id_filter, validate_video_id

DIMS = CatalogDims(frames=8, audio=4, text=6, cf=3)


def row(video_id: str, seed: int, cf: bool = False) -> dict:
    rng = np.random.default_rng(seed)

    def unit(n: int) -> list[float]:
        v = rng.normal(size=n).astype(np.float32)
        return (v / np.linalg.norm(v)).tolist()

    return {
        "video_id": video_id, "source_uri": f"/videos/{video_id}.mp4", "caption": f"caption {seed}",
        "frames_vector": unit(8), "audio_vector": None, "text_vector": unit(6), "fused_vector": unit(18),
        "frames_present": True, "audio_present": False, "text_present": True,
        "tags": ["music", "dance"], "tag_scores": [0.8, 0.4], "cf_vector": unit(3) if cf else None,
        "ingested_at": datetime.now(timezone.utc),
    }


def test_round_trip_search_and_upsert(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "db", dims=DIMS)
    assert cat.upsert([row("v1", 1), row("v2", 2, cf=True), row("v3", 3)]) == 3
    assert cat.count() == 3
    got = cat.get("v2")
    assert got["caption"] == "caption 2" and got["audio_vector"] is None and len(got["cf_vector"]) == 3
    assert got["tags"] == ["music", "dance"]
    query = np.array(row("v3", 3)["fused_vector"], np.float32)
    hits = cat.search(query, k=2)
    assert hits[0]["video_id"] == "v3" and hits[0]["_distance"] == pytest.approx(0.0, abs=1e-5)
    # same id twice (across calls and inside one batch) -> one row, last write wins
    cat.upsert([row("v1", 10)])
    cat.upsert([row("v1", 11), row("v1", 12)])
    assert cat.count() == 3
    assert cat.get("v1")["caption"] == "caption 12"
    # reopen from disk: dims come from the table
    again = Catalog(tmp_path / "db")
    assert again.dims == DIMS and again.count() == 3 and again.ids() == {"v1", "v2", "v3"}


def test_dims_mismatch_is_refused(tmp_path: Path) -> None:
    Catalog(tmp_path / "db", dims=DIMS).upsert([row("v1", 1)])
    with pytest.raises(CatalogError, match="vector sizes"):
        Catalog(tmp_path / "db", dims=CatalogDims(frames=9, audio=4, text=6, cf=3))


def test_bad_rows_write_nothing(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "db", dims=DIMS)
    cat.upsert([row("v1", 1)])
    version = cat.version
    bad = row("v2", 2)
    bad["text_vector"] = [0.1, 0.2]
    with pytest.raises(CatalogError, match="text_vector"):
        cat.upsert([row("v3", 3), bad])
    with pytest.raises(InvalidVideoId):
        cat.upsert([row("v4", 4), row("../etc/passwd", 5)])
    assert cat.version == version and cat.count() == 1


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "x' OR '1'='1", "a b", "-lead", "x" * 200, "a..b", None, 5])
def test_invalid_ids_rejected(bad: object) -> None:
    with pytest.raises(InvalidVideoId):
        validate_video_id(bad)  # type: ignore[arg-type]


def test_filters_never_splice_raw_text(tmp_path: Path) -> None:
    assert id_filter(["a1", "b-2"]) == "video_id IN ('a1', 'b-2')"
    with pytest.raises(InvalidVideoId):
        id_filter(["ok", "x') OR (1=1"])
    cat = Catalog(tmp_path / "db", dims=DIMS)
    cat.upsert([row("v1", 1)])
    with pytest.raises(InvalidVideoId):
        cat.get("v1' OR '1'='1")
    assert cat.get("nope") is None
