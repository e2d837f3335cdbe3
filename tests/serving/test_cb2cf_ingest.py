"""CB2CF wired into ingest: a configured model fills the row's CF vector and model version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cb2cf import CB2CF
from cb2cf.features import load_features_npz
from tagging.cli.main import main
from tagging.errors import ModelLoadError
from tagging.pipeline import Pipeline, PipelineConfig
from tagging.store.catalog import Catalog


def save_model(pipeline: Pipeline, path: Path, cf_dim: int = 16, extractor_ids: dict[str, str] | None = None,
               only: tuple[str, ...] = ()) -> CB2CF:
    """A small CB2CF over the pipeline's views (all three, or ``only``), manifest naming its extractors."""
    torch.manual_seed(0)
    views = {m: e.dim for m, e in pipeline.extractors.items() if not only or m in only}
    model = CB2CF(views, cf_dim=cf_dim, tower_dim=16, hidden_dim=32)
    ids = extractor_ids or {m: e.extractor_id for m, e in pipeline.extractors.items()}
    model.manifest = {"name": "video-cb2cf", "views": [{"name": m, "dim": d, "extractor_id": ids[m]} for m, d in views.items()]}
    model.eval().save(path)
    return model


def test_ingest_fills_cf_vector(pipeline: Pipeline, clips: dict[str, Path], tmp_path: Path) -> None:
    model = save_model(pipeline, tmp_path / "model")
    p = Pipeline(PipelineConfig(cb2cf_model=str(tmp_path / "model")))
    assert p.dims().cf == 16
    cat = Catalog(tmp_path / "db", dims=p.dims())
    report = p.ingest([{"path": clips["good"], "video_id": "v1"}, {"path": clips["audio_only"], "video_id": "v2"}], cat)
    assert not report.failures
    for r in report.results:
        row = cat.get(r.video_id)
        assert row["cf_model_version"] == model.version and len(row["cf_vector"]) == 16
        feats = {m: (np.array(row[f"{m}_vector"], np.float32) if row[f"{m}_present"] else np.zeros(e.dim, np.float32))[None]
                 for m, e in p.extractors.items()}
        masks = {m: np.array([row[f"{m}_present"]]) for m in p.extractors}
        np.testing.assert_allclose(row["cf_vector"], model.predict(feats, masks)[0], rtol=1e-4, atol=1e-5)
    assert report.results[1].features["frames"].present is False  # missing view handled by the model's mask


def test_an_item_without_the_models_views_is_stored_without_a_cf_vector(pipeline: Pipeline, clips: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    """A model reading audio only cannot place a silent clip: that clip is tagged and stored, the batch goes on."""
    model = save_model(pipeline, tmp_path / "model", only=("audio",))
    p = Pipeline(PipelineConfig(cb2cf_model=str(tmp_path / "model")))
    cat = Catalog(tmp_path / "db", dims=p.dims())
    report = p.ingest([{"path": clips["video_only"], "video_id": "silent"}, {"path": clips["good"], "video_id": "v1"}], cat)
    assert not report.failures and [r.video_id for r in report.results] == ["silent", "v1"]
    silent, good = cat.get("silent"), cat.get("v1")
    assert silent["cf_vector"] is None and silent["cf_model_version"] == model.version and silent["tags"]
    assert "audio" in report.results[0].errors["cb2cf"]
    assert len(good["cf_vector"]) == 16 and good["cf_model_version"] == model.version


def test_model_for_other_extractors_is_refused(pipeline: Pipeline, tmp_path: Path) -> None:
    ids = {m: e.extractor_id for m, e in pipeline.extractors.items()}
    ids["text"] = "text-minilm@0+other"
    save_model(pipeline, tmp_path / "model", extractor_ids=ids)
    p = Pipeline(PipelineConfig(cb2cf_model=str(tmp_path / "model")))
    with pytest.raises(ModelLoadError, match="text"):
        p.cb2cf  # noqa: B018
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError):
        Pipeline(PipelineConfig(cb2cf_model=str(tmp_path / "empty"))).cb2cf  # noqa: B018


def test_export_features_for_training(pipeline: Pipeline, clips: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "db"
    pipeline.ingest([{"path": clips["good"], "video_id": "a"}, {"path": clips["video_only"], "video_id": "b"}], db)
    assert main(["export-features", "--db", str(db), "--out", str(tmp_path / "f.npz")]) == 0
    ids, feats, masks, specs = load_features_npz(str(tmp_path / "f.npz"))
    order = {v: i for i, v in enumerate(ids)}
    assert set(ids) == {"a", "b"} and feats["frames"].shape == (2, 1280)
    assert masks["audio"][order["a"]] and not masks["audio"][order["b"]]
    assert {s.name: s.extractor_id for s in specs} == {m: e.extractor_id for m, e in pipeline.extractors.items()}
