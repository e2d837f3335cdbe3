"""Thumbnails stored at ingest, and catalogs made before the thumbnail columns existed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import cv2
import lancedb
import numpy as np
import pyarrow as pa
import pytest

from tagging.cli.main import main
from tagging.media.thumbs import THUMB_MAX_SIDE, jpeg_thumbnail, make_thumbnails
from tagging.store.catalog import IMAGE_COLUMNS, Catalog, CatalogDims, jsonable_row, row_model

DIMS = CatalogDims(frames=8, audio=4, text=6, cf=3)
NEW_COLUMNS = ("thumbnail", "frame_thumbs", "frame_times")


def _row(video_id: str, **extra: object) -> dict:
    v = np.ones(18, np.float32) / np.sqrt(18)
    return {"video_id": video_id, "source_uri": f"/v/{video_id}.mp4", "fused_vector": v.tolist(), "tags": ["music"],
            "tag_scores": [0.5], "ingested_at": datetime.now(UTC), **extra}


def test_jpeg_thumbnail_keeps_aspect_and_colour() -> None:
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, :, 0] = 200  # red in RGB
    jpeg = jpeg_thumbnail(frame)
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) < 4000
    back = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)  # BGR
    assert back.shape == (120, THUMB_MAX_SIDE, 3)
    assert back[..., 2].mean() > 180 and back[..., 0].mean() < 20  # still red, not swapped to blue
    with pytest.raises(ValueError, match="RGB"):
        jpeg_thumbnail(np.zeros((4, 4), np.uint8))


def test_make_thumbnails_spreads_over_the_frames() -> None:
    frames = [np.full((90, 160, 3), i * 20, np.uint8) for i in range(10)]
    t = make_thumbnails(frames, [i * 0.5 for i in range(10)], limit=4)
    assert t.times == [0.0, 1.5, 3.0, 4.5] and len(t.frames) == 4 and t.poster == t.frames[2]
    assert make_thumbnails([], []).poster is None


def test_pipeline_rows_carry_thumbnails(pipeline, clips: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    r = pipeline.analyze(clips["good"])
    row = r.to_row()
    assert row["thumbnail"][:2] == b"\xff\xd8" and len(row["frame_thumbs"]) == len(row["frame_times"]) >= 2
    assert row["frame_times"] == sorted(row["frame_times"]) and row["frame_times"][-1] < r.info.duration_s
    cat = Catalog(tmp_path / "db", dims=pipeline.dims())
    cat.upsert([row])
    got = cat.get(row["video_id"])
    assert got["thumbnail"] == row["thumbnail"] and got["frame_thumbs"] == row["frame_thumbs"]
    assert not set(IMAGE_COLUMNS) & set(jsonable_row(got))  # JPEG bytes never go into JSON answers
    capsys.readouterr()
    assert main(["show", row["video_id"], "--db", str(tmp_path / "db")]) == 0
    shown = json.loads(capsys.readouterr().out)  # `tagging show` names the pictures instead of printing bytes
    assert shown["thumbnail"] == f"<{len(row['thumbnail'])} bytes>" and shown["frame_thumbs"] == f"<{len(row['frame_thumbs'])} JPEGs>"


def test_catalog_made_before_the_thumbnail_columns_still_loads(tmp_path: Path) -> None:
    full = row_model(DIMS).to_arrow_schema()
    old = pa.schema([f for f in full if f.name not in NEW_COLUMNS])
    db = lancedb.connect(str(tmp_path / "db"))
    table = db.create_table("videos", schema=old)
    table.add(pa.Table.from_pylist([row_model(DIMS)(**_row("old1")).model_dump(exclude=set(NEW_COLUMNS))], schema=old))

    cat = Catalog(tmp_path / "db")
    assert cat.dims == DIMS and cat.get("old1")["video_id"] == "old1"  # reads work, nothing written
    assert "thumbnail" not in cat.table.schema.names
    assert jsonable_row(cat.get("old1"))["tags"] == ["music"]
    cat.upsert([_row("new1", thumbnail=b"\xff\xd8jpeg", frame_thumbs=[b"a", b"b"], frame_times=[0.5, 1.5])])
    assert set(NEW_COLUMNS) <= set(cat.table.schema.names)
    assert cat.get("old1")["thumbnail"] is None and cat.get("new1")["frame_times"] == [0.5, 1.5]
    assert cat.get("new1")["thumbnail"] == b"\xff\xd8jpeg" and Catalog(tmp_path / "db").count() == 2
