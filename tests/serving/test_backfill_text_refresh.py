"""Text-extractor change: the backfill refreshes what depends on the text view from the stored row,
without decoding; rows that do not store their tags' visual/audio inputs get the full re-analysis."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pytest

from tagging.pipeline import Pipeline, PipelineConfig
from tagging.serving.backfill.run import BackfillConfig, run_backfill
from tagging.serving.backfill.sources import catalog_state
from tagging.store.catalog import Catalog, CatalogDims, row_model

CAPTIONS = {"zh": "我的狗狗在公园里追球", "en": "easy pasta recipe for dinner #cooking", "legacy": "drum cover at home"}


def _cos(a: object, b: object) -> float:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _cb2cf_model(pipeline: Pipeline, name: str, path: Path) -> Path:
    import torch

    from cb2cf import CB2CF

    torch.manual_seed(0)
    model = CB2CF({m: e.dim for m, e in pipeline.extractors.items()}, cf_dim=64, tower_dim=8, hidden_dim=16)
    model.manifest = {"name": name, "views": [{"name": m, "dim": e.dim, "extractor_id": e.extractor_id}
                                              for m, e in pipeline.extractors.items()]}
    model.eval().save(path)
    return path


def test_text_extractor_change_refreshes_rows_without_decoding(pipeline, clips: dict[str, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tagging import coldstart
    from tagging.errors import ModelLoadError

    media = tmp_path / "media"
    media.mkdir()
    files = {k: shutil.copy(clips["good" if k != "en" else "good2"], media / f"{k}.mp4") for k in CAPTIONS}
    old = Pipeline(PipelineConfig(text_extractor="text-minilm"))
    db = tmp_path / "db"
    report = old.ingest([{"path": files[k], "video_id": k, "caption": c} for k, c in CAPTIONS.items()], db)
    assert not report.failures
    catalog = Catalog(db)
    before = {k: catalog.get(k) for k in CAPTIONS}
    legacy = before["legacy"]  # a row made before the tag inputs were stored
    catalog.upsert([{**{k: v for k, v in legacy.items() if not k.startswith("_")}, "tag_inputs_json": None}])
    assert {v: s[2] for v, s in catalog_state(catalog).items()} == {"zh": True, "en": True, "legacy": False}

    # a CB2CF model trained with the old (MiniLM) text view is refused by the new pipeline
    old_model = _cb2cf_model(old, "old", tmp_path / "old_model")
    with pytest.raises(ModelLoadError, match="text"):
        coldstart.load_model(old_model, pipeline.extractors)
    model = coldstart.load_model(_cb2cf_model(pipeline, "new", tmp_path / "new_model"), pipeline.extractors)

    # what a full re-analysis with the default pipeline gives, then the refreshable sources are gone
    expected = {k: pipeline.analyze(files[k], k, c) for k, c in CAPTIONS.items()}
    for k in ("zh", "en"):
        Path(files[k]).unlink()
    monkeypatch.setattr(pipeline, "_cb2cf", model)
    out = run_backfill(str(db), BackfillConfig(db=str(db), batch_videos=1), pipeline=pipeline)

    assert (out.text_refreshed, out.processed, out.failed, out.done) == (2, 1, 0, 0), out.summary()
    catalog = Catalog(db)
    for k, ref in expected.items():
        row = catalog.get(k)
        assert json.loads(row["extractors_json"]) == pipeline.versions
        assert row["tags"] == [t.id for t in ref.tags], k
        assert np.allclose(row["tag_scores"], [t.score for t in ref.tags], atol=2e-3)
        assert _cos(row["text_vector"], ref.features["text"].vector) >= 0.999
        assert _cos(row["text_vector"], before[k]["text_vector"]) < 0.9  # MiniLM's vector was replaced
        assert _cos(row["fused_vector"], ref.fused) >= 0.999
        cf, version = coldstart.place(model, ref.features)
        assert row["cf_model_version"] == version and _cos(row["cf_vector"], cf) >= 0.999
        assert row["tag_inputs_json"] and row["thumbnail"][:2] == b"\xff\xd8"
    zh = json.loads(catalog.get("zh")["tags_json"])[0]
    assert zh["id"] == "animals" and zh["evidence"]["text"]["language"] == "zh"
    assert zh["evidence"]["text"]["model"] == pipeline.tagger.text.name
    assert "text_refresh" in json.loads(catalog.get("zh")["timings_json"])
    assert "text_refresh" not in json.loads(catalog.get("legacy")["timings_json"])  # re-analysed in full
    again = run_backfill(str(db), BackfillConfig(db=str(db), batch_videos=1), pipeline=pipeline)
    assert again.done == 3 and again.text_refreshed == 0


def test_catalog_made_before_the_tag_inputs_column_plans_full_work(tmp_path: Path) -> None:
    dims = CatalogDims(frames=8, audio=4, text=6, cf=3)
    full = row_model(dims).to_arrow_schema()
    old = pa.schema([f for f in full if f.name != "tag_inputs_json"])
    table = lancedb.connect(str(tmp_path / "db")).create_table("videos", schema=old)
    v = (np.ones(18, np.float32) / np.sqrt(18)).tolist()
    row = {"video_id": "old1", "source_uri": "/v/old1.mp4", "fused_vector": v, "tags": ["music"], "tag_scores": [0.5],
           "extractors_json": json.dumps({"frames": "f", "audio": "a", "text": "t"}), "ingested_at": "2026-01-01T00:00:00"}
    table.add(pa.Table.from_pylist([row_model(dims)(**row).model_dump(exclude={"tag_inputs_json"})], schema=old))
    catalog = Catalog(tmp_path / "db")
    assert catalog_state(catalog) == {"old1": ({"frames": "f", "audio": "a", "text": "t"}, None, False)}
    catalog.upsert([{**row, "video_id": "new1", "tag_inputs_json": "{}"}])
    assert "tag_inputs_json" in catalog.table.schema.names and catalog.get("old1")["tag_inputs_json"] is None
    assert catalog_state(catalog)["new1"][2] and not catalog_state(catalog)["old1"][2]
