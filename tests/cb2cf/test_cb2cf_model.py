"""CB2CF on synthetic data with a known structure: training, save/load, manifests, API."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import scipy.sparse as sp

from cb2cf import (
    CB2CF,
    CFSpace,
    ContentError,
    FeatureMismatchError,
    ItemSet,
    ModelFileError,
    Predictor,
    SpaceConfig,
    TrainConfig,
    UnknownIdError,
    ViewSpec,
    train_cb2cf,
    train_space,
)
from cb2cf.interactions import Interactions
from cb2cf.metrics import rank_metrics

N_USERS, N_ITEMS, LATENT = 150, 360, 8


@pytest.fixture(scope="module")
def world() -> dict:
    """Users and items share a latent taste space; two content views are noisy maps of the item factors."""
    rng = np.random.default_rng(0)
    zu = rng.normal(size=(N_USERS, LATENT))
    zi = rng.normal(size=(N_ITEMS, LATENT))
    pop = rng.normal(scale=1.0, size=N_ITEMS)
    logits = zu @ zi.T / np.sqrt(LATENT) * 2.0 + pop - 3.0
    R = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    feats = {"a": (zi @ rng.normal(size=(LATENT, 24)) + 0.3 * rng.normal(size=(N_ITEMS, 24))).astype(np.float32),
             "b": np.hstack([zi[:, :4], pop[:, None]]).astype(np.float32) + 0.1 * rng.normal(size=(N_ITEMS, 5)).astype(np.float32)}
    ids = np.array([f"i{j}" for j in range(N_ITEMS)])
    users = np.array([f"u{j}" for j in range(N_USERS)])
    perm = rng.permutation(N_ITEMS)
    warm, val, test = np.sort(perm[:240]), np.sort(perm[240:300]), np.sort(perm[300:])
    space = train_space(Interactions(users, ids[warm], sp.csr_matrix(R[:, warm])),
                        SpaceConfig(factors=16, iterations=10, num_threads=1), space_id="synthetic")

    def items(rows: np.ndarray) -> ItemSet:
        return ItemSet(ids[rows], {k: v[rows] for k, v in feats.items()}, {}, sp.csr_matrix(R[:, rows]))

    specs = [ViewSpec("a", 24, "synthetic-a@1"), ViewSpec("b", 5, "synthetic-b@1")]
    cfg = TrainConfig(name="synthetic", tower_dim=32, hidden_dim=64, batch_size=64, lr=3e-3, max_epochs=40,
                      patience=10, seed=0, view_dropout=0.2)
    model, hist = train_cb2cf(items(warm), space, cfg, items(val), specs)
    return {"space": space, "model": model, "hist": hist, "feats": feats, "R": R, "ids": ids,
            "test": items(test), "specs": specs, "cfg": cfg, "items": items, "warm": warm, "val": val}


def test_recovers_structure_better_than_random(world: dict) -> None:
    t = world["test"]
    U = world["space"].user_vectors
    pred = world["model"].predict(t.features)
    ours = rank_metrics(U @ pred.T, t.interactions)["recall@20"]
    rnd = rank_metrics(np.random.default_rng(1).random((N_USERS, len(t.item_ids))), t.interactions)["recall@20"]
    assert ours > 1.5 * rnd, (ours, rnd)


def test_evaluate_scores_both_directions_and_selection_is_checked(world: dict) -> None:
    from cb2cf.train import evaluate

    m = evaluate(world["model"], world["space"].user_vectors, world["test"])
    assert {"recall@20", "ndcg@10", "audience_recall@50", "audience_ndcg@50"} <= set(m)
    assert m["audience_users"] == len(world["test"].item_ids)  # every synthetic test item has users
    manifest = world["model"].manifest["metrics"]
    assert {"val_recall@20", "val_audience_recall@50"} <= set(manifest)
    items = world["items"]
    assert manifest["selected_on"] == ["recall@20", "audience_recall@50"]
    small, _ = train_cb2cf(items(world["warm"]), world["space"], TrainConfig(**{**world["cfg"].__dict__, "max_epochs": 2}),
                           items(world["val"][:10]), world["specs"])  # recall@20 of 10 items is always 1
    assert small.manifest["metrics"]["selected_on"] == ["ndcg@20", "audience_recall@50"]
    cfg = TrainConfig(**{**world["cfg"].__dict__, "max_epochs": 1, "select_on": ("recall@7",)})
    with pytest.raises(ContentError, match="recall@7"):
        train_cb2cf(items(world["warm"]), world["space"], cfg, items(world["val"]), world["specs"])


def test_training_is_reproducible(world: dict) -> None:
    items = world["items"]
    cfg = TrainConfig(**{**world["cfg"].__dict__, "max_epochs": 3})
    m1, _ = train_cb2cf(items(world["warm"]), world["space"], cfg, items(world["val"]), world["specs"])
    m2, _ = train_cb2cf(items(world["warm"]), world["space"], cfg, items(world["val"]), world["specs"])
    assert m1.weights_hash() == m2.weights_hash()


def test_save_load_round_trip(world: dict, tmp_path) -> None:
    model, t = world["model"], world["test"]
    model.save(tmp_path / "m")
    for name in ("config.json", "model.safetensors", "manifest.json"):
        assert (tmp_path / "m" / name).is_file()
    man = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert man["cf_space"]["id"] == "synthetic" and man["cf_space"]["version"] == world["space"].version
    assert {v["name"]: (v["dim"], v["extractor_id"]) for v in man["views"]} == {
        "a": (24, "synthetic-a@1"), "b": (5, "synthetic-b@1")}
    assert man["training_data"]["fingerprint"] and "torch" in man["libraries"] and "metrics" in man
    loaded = CB2CF.load(tmp_path / "m", expected_views={s.name: s for s in world["specs"]})
    assert loaded.version == model.version
    np.testing.assert_array_equal(loaded.predict(t.features), model.predict(t.features))


def test_manifest_mismatch_is_refused(world: dict, tmp_path) -> None:
    world["model"].save(tmp_path / "m")
    with pytest.raises(FeatureMismatchError, match="dim"):
        CB2CF.load(tmp_path / "m", expected_views={"a": 24, "b": 6})
    with pytest.raises(FeatureMismatchError, match="not in the model"):
        CB2CF.load(tmp_path / "m", expected_views={"a": 24, "b": 5, "audio": 128})
    with pytest.raises(FeatureMismatchError, match="extractor"):
        CB2CF.load(tmp_path / "m", expected_views={"a": ViewSpec("a", 24, "other@2"), "b": 5})
    with pytest.raises(FeatureMismatchError):
        world["model"].predict({"a": np.zeros((2, 23), np.float32)})
    with pytest.raises(FeatureMismatchError):
        world["model"].predict({"c": np.zeros((2, 5), np.float32)})


@pytest.mark.parametrize("damage", ["missing", "truncated", "pickle", "bad_json", "manifest_list", "manifest_dim"])
def test_bad_model_files_raise_typed_error(world: dict, tmp_path, damage: str) -> None:
    d = tmp_path / "m"
    world["model"].save(d)
    w = d / "model.safetensors"
    if damage == "missing":
        w.unlink()
    elif damage == "truncated":
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif damage == "pickle":
        import pickle

        w.write_bytes(pickle.dumps({"x": 1}))
    elif damage == "manifest_list":
        (d / "manifest.json").write_text("[]")
    elif damage == "manifest_dim":
        m = json.loads((d / "manifest.json").read_text())
        m["views"][0]["dim"] = 999
        (d / "manifest.json").write_text(json.dumps(m))
    else:
        (d / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError):
        CB2CF.load(d)


def test_missing_views_and_single_item(world: dict) -> None:
    model, f = world["model"], world["feats"]
    one = model.predict({"a": f["a"][0], "b": f["b"][0]})
    assert one.shape == (1, world["space"].dim)
    no_b = model.predict({"a": f["a"][:5]})
    masked = model.predict({"a": f["a"][:5], "b": np.full((5, 5), np.nan, np.float32)},
                           {"b": np.zeros(5, bool)})
    np.testing.assert_allclose(no_b, masked, rtol=1e-6)
    assert np.isfinite(no_b).all()
    with pytest.raises(ContentError, match="NaN"):
        model.predict({"a": f["a"][:2], "b": np.full((2, 5), np.nan, np.float32)})
    with pytest.raises(ContentError, match="no view"):
        model.predict({"a": f["a"][:2]}, {"a": np.array([True, False])})
    # errors name the offending items; try_predict places the others
    with pytest.raises(ContentError, match="'x1'"):
        model.predict({"a": f["a"][:2]}, {"a": np.array([True, False])}, ids=["x0", "x1"])
    with pytest.raises(ContentError, match="'x0'"):
        model.predict({"a": np.full((2, 24), np.nan, np.float32)}, {"a": np.array([True, False])}, ids=["x0", "x1"])
    vecs, placed = model.try_predict({"a": f["a"][:3], "b": f["b"][:3]},
                                     {"a": np.array([True, False, True]), "b": np.array([True, False, False])})
    assert placed.tolist() == [True, False, True] and np.isnan(vecs[1]).all()
    with pytest.raises(ContentError, match="different numbers of rows"):  # validated like predict
        model.try_predict({"a": f["a"][:2], "b": f["b"][:3]})
    with pytest.raises(FeatureMismatchError):
        model.try_predict({"zz": f["a"][:3]}, {"zz": np.zeros(3, bool)})
    bad = f["a"][:3].copy()
    bad[2] = np.nan
    with pytest.raises(ContentError, match="rows 2"):  # positions in the caller's batch
        model.try_predict({"a": bad}, {"a": np.array([False, True, True])})
    np.testing.assert_allclose(vecs[[0, 2]], model.predict({"a": f["a"][[0, 2]], "b": f["b"][[0, 2]]},
                                                          {"b": np.array([True, False])}), rtol=1e-6)


def test_predictor_api(world: dict) -> None:
    space, model, t = world["space"], world["model"], world["test"]
    pred = Predictor(space, model)
    vecs = pred.predict(t.features)
    seeds = pred.seed_users(vecs[0], k=10)
    assert len(seeds.ids) == 10 and np.all(np.diff(seeds.scores) <= 0)
    assert set(seeds.ids) <= set(space.user_ids)
    sim = pred.similar_items(space.item_vectors[3], k=5)
    assert sim.ids[0] == space.item_ids[3]
    rec = pred.recommend("u1", k=20, new_items=t.item_ids, new_vectors=vecs, new_share=0.25)
    assert len(rec.ids) == 20 and (rec.sources == "new").sum() >= 5 and np.all(np.diff(rec.scores) <= 0)
    assert len(set(rec.ids)) == 20
    only_warm = pred.recommend("u1", k=10, exclude=[space.item_ids[0]])
    assert set(only_warm.sources) == {"warm"} and space.item_ids[0] not in only_warm.ids
    with pytest.raises(UnknownIdError):
        pred.recommend("nobody", k=5)
    with pytest.raises(ContentError):
        pred.recommend("u1", k=5, new_items=["x"], new_vectors=np.zeros((2, space.dim)))
    other = CFSpace("other", "1", space.user_ids, space.user_vectors, space.item_ids, space.item_vectors)
    with pytest.raises(FeatureMismatchError):
        Predictor(other, model)


def test_seeded_users_are_the_items_users(world: dict) -> None:
    """Seeding a cold item to its top predicted users hits its real users far above chance."""
    t, model, space = world["test"], world["model"], world["space"]
    pred = Predictor(space, model)
    vecs = model.predict(t.features)
    R = sp.csr_matrix(t.interactions).T.tocsr()
    base = R.nnz / (R.shape[0] * R.shape[1])
    hits = [np.isin(pred.seed_users(vecs[j], 20).ids, space.user_ids[R[j].indices]).mean() for j in range(len(vecs))]
    assert np.mean(hits) > 1.5 * base


def test_space_round_trip_and_corruption(world: dict, tmp_path) -> None:
    space = world["space"]
    space.save(tmp_path / "s")
    again = CFSpace.load(tmp_path / "s")
    assert again.ref == space.ref and np.array_equal(again.item_vectors, space.item_vectors)
    shutil.copy(tmp_path / "s" / "space.json", tmp_path / "space.json")
    (tmp_path / "s" / "space.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ModelFileError):
        CFSpace.load(tmp_path / "s")


def test_training_without_validation_keeps_the_last_best_epoch(world: dict) -> None:
    """Without validation the score is -loss; a loss above 1 must still give a model (it once gave none)."""
    from dataclasses import replace

    model, hist = train_cb2cf(world["items"](world["warm"]), world["space"], replace(world["cfg"], max_epochs=2), None,
                              world["specs"])
    assert hist and model.predict({k: v[:3] for k, v in world["feats"].items()}).shape == (3, world["space"].dim)
