"""Bad input is refused with typed errors; space import and the CLI round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cb2cf import CFSpace, ContentError, InteractionLogError, SpaceError, import_space, save_features_npz
from cb2cf.cli import main
from cb2cf.interactions import read_log, to_matrix, validate_log


def _log(**cols) -> pd.DataFrame:
    base = {"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "weight": [1.0, 2.0, 3.0]}
    base.update(cols)
    return pd.DataFrame(base)


@pytest.mark.parametrize("cols, match", [
    ({"weight": [1.0, -1.0, 2.0]}, "negative"),
    ({"weight": [1.0, np.nan, 2.0]}, "NaN"),
    ({"weight": [1.0, "bad", 2.0]}, "NaN"),
    ({"user_id": ["a", "", "b"]}, "empty user_id"),
    ({"item_id": ["x", None, "y"]}, "empty item_id"),
    ({"item_id": ["x", "x", "x"], "user_id": ["a", "a", "b"]}, "duplicate"),
])
def test_bad_logs_are_refused(cols: dict, match: str) -> None:
    with pytest.raises(InteractionLogError, match=match):
        validate_log(_log(**cols))


def test_unknown_ids_and_documented_drops() -> None:
    with pytest.raises(InteractionLogError, match="unknown items"):
        validate_log(_log(), known_items=["x"])
    df, report = validate_log(_log(), known_items=["x"], drop_unknown=True)
    assert report["dropped_unknown_items"] == 1 and len(df) == 2
    dup = _log(item_id=["x", "x", "y"], user_id=["a", "a", "b"])
    df, report = validate_log(dup, duplicates="sum")
    assert report["merged_duplicates"] == 1 and df.loc[df.item_id == "x", "weight"].item() == 3.0
    with pytest.raises(InteractionLogError, match="empty"):
        validate_log(_log().iloc[:0])


def test_read_log_and_matrix(tmp_path) -> None:
    p = tmp_path / "log.csv"
    pd.DataFrame({"userId": [1, 2], "movieId": [10, 20], "rating": [4.0, 5.0]}).to_csv(p, index=False)
    df, _ = validate_log(read_log(p))
    m = to_matrix(df)
    assert m.shape == (2, 2) and m.matrix.sum() == 9.0 and list(m.item_ids) == ["10", "20"]
    with pytest.raises(InteractionLogError, match="not found"):
        read_log(tmp_path / "missing.csv")
    q = tmp_path / "zeros.csv"  # ids stay strings ("007" is not "7"); weight 0 is no interaction
    q.write_text("user_id,item_id,weight\n001,007,1\n002,007,0\n002,070,2\n")
    df, report = validate_log(read_log(q))
    assert sorted(df["item_id"]) == ["007", "070"] and list(df["user_id"]) == ["001", "002"]
    assert report["dropped_zero_weight"] == 1 and to_matrix(df, binary=True).matrix.sum() == 2.0
    t = tmp_path / "zeros_ts.csv"  # ... also with a timestamp column, which stays aligned
    t.write_text("userId,movieId,rating,timestamp\n1,10,4.0,100\n2,10,0,101\n2,20,3.5,102\n")
    df, report = validate_log(read_log(t))
    assert report["dropped_zero_weight"] == 1 and df["timestamp"].tolist() == [100, 102]


def test_import_space_parquet_npz(tmp_path) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame({"id": ["u1", "u2"], "vector": list(rng.random((2, 4)).astype(np.float32))}).to_parquet(
        tmp_path / "users.parquet")
    np.savez(tmp_path / "items.npz", ids=np.array(["i1", "i2", "i3"]), vectors=rng.random((3, 4)))
    s = import_space("prod", tmp_path / "users.parquet", tmp_path / "items.npz", version="v7")
    assert s.ref == "prod@v7" and s.dim == 4 and list(s.item_ids) == ["i1", "i2", "i3"]
    with pytest.raises(SpaceError):
        CFSpace("bad", "1", ["u"], np.zeros((1, 3)), ["i", "i"], np.zeros((2, 3)))
    # every source failure is a SpaceError naming the source
    with pytest.raises(SpaceError, match="missing.parquet"):
        import_space("x", tmp_path / "missing.parquet", tmp_path / "items.npz")
    pd.DataFrame({"id": ["u1", None], "vector": list(rng.random((2, 4)))}).to_parquet(tmp_path / "null_id.parquet")
    with pytest.raises(SpaceError, match="empty id"):
        import_space("x", tmp_path / "null_id.parquet", tmp_path / "items.npz")
    pd.DataFrame({"id": ["u1", "u2"], "vector": [[0.1, 0.2], [0.3]]}).to_parquet(tmp_path / "ragged.parquet")
    with pytest.raises(SpaceError, match="ragged.parquet"):
        import_space("x", tmp_path / "ragged.parquet", tmp_path / "items.npz")
    import lancedb

    db = lancedb.connect(tmp_path / "lance")
    db.create_table("users", pd.DataFrame({"id": ["u1", "u2"], "vector": list(rng.random((2, 4)).astype(np.float32))}))
    s2 = import_space("lance", tmp_path / "lance", tmp_path / "items.npz", users_table="users")
    assert list(s2.user_ids) == ["u1", "u2"]
    with pytest.raises(SpaceError, match="nope"):
        import_space("x", tmp_path / "lance", tmp_path / "items.npz", users_table="nope")
    with pytest.raises(SpaceError, match="NaN"):
        CFSpace("bad", "1", ["u"], np.full((1, 3), np.nan), ["i"], np.zeros((1, 3)))


def test_cli_train_space_train_predict(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    n_u, n_i = 60, 90
    z = rng.normal(size=(n_i, 4))
    zu = rng.normal(size=(n_u, 4))
    R = rng.random((n_u, n_i)) < 1 / (1 + np.exp(-(zu @ z.T) + 1.5))
    u, i = np.nonzero(R)
    pd.DataFrame({"user_id": [f"u{x}" for x in u], "item_id": [f"i{x}" for x in i]}).to_csv(
        tmp_path / "log.csv", index=False)
    ids = np.array([f"i{x}" for x in range(n_i)])
    save_features_npz(str(tmp_path / "f.npz"), ids, {"text": z.astype(np.float32), "tags": z[:, :2].astype(np.float32)},
                      {"tags": np.arange(n_i) % 3 > 0}, {"text": "toy@1", "tags": "toy@1"})
    assert main(["train-space", "--log", str(tmp_path / "log.csv"), "--out", str(tmp_path / "space"),
                 "--factors", "8", "--iterations", "5"]) == 0
    train = ["train", "--features", str(tmp_path / "f.npz"), "--space", str(tmp_path / "space"),
             "--interactions", str(tmp_path / "log.csv"), "--out", str(tmp_path / "model")]
    capsys.readouterr()
    assert main(train) == 2 and not (tmp_path / "model").exists()  # 9 validation items cannot select a model
    err = capsys.readouterr().err
    assert "TrainingError: catalog too small to validate (90 feature rows, 90 in the space: 81 train / 9 validation" in err
    assert "9 validation items (need >= 30)" in err
    assert main(train + ["--val-frac", "0.4"]) == 0  # 36 validation items: fit to deploy
    assert json.loads((tmp_path / "model" / "manifest.json").read_text())["fit_to_deploy"] is True
    assert main(["predict", "--model", str(tmp_path / "model"), "--features", str(tmp_path / "f.npz"),
                 "--space", str(tmp_path / "space"), "-k", "3", "--strict", "--out", str(tmp_path / "p.json")]) == 0
    out = json.loads((tmp_path / "p.json").read_text())
    assert len(out["items"]) == n_i and len(out["items"][0]["seed_users"]) == 3
    # unknown ids in the log and space items without content are counted, printed and kept in the manifest
    with open(tmp_path / "log.csv", "a") as f:
        f.write("ghost,i1\nu1,nosuchitem\n")
    half = np.arange(n_i) < n_i // 2
    save_features_npz(str(tmp_path / "half.npz"), ids[half], {"text": z[half].astype(np.float32)}, {}, {"text": "toy@1"})
    capsys.readouterr()
    assert main(["train", "--features", str(tmp_path / "half.npz"), "--space", str(tmp_path / "space"),
                 "--interactions", str(tmp_path / "log.csv"), "--out", str(tmp_path / "model2"),
                 "--allow-unvalidated", "--kernel-landmarks", "7"]) == 0
    assert json.loads((tmp_path / "model2" / "manifest.json").read_text())["train_config"]["kernel_landmarks"] == 7
    manifest = json.loads((tmp_path / "model2" / "manifest.json").read_text())
    assert manifest["fit_to_deploy"] is False and manifest["not_fit_to_deploy_because"][0].startswith("4 validation items")
    report = manifest["training_data"]["report"]
    assert report["dropped_unknown_users"] == 1 and report["space_items_without_features"] == n_i - n_i // 2
    printed = capsys.readouterr().out
    assert report["dropped_unknown_items"] >= 1 and "dropped_unknown_users" in printed
    assert "NOT FIT TO DEPLOY: 4 validation items (need >= 30)" in printed and "41 train / 4 validation items" in printed
    save_features_npz(str(tmp_path / "g.npz"), ids, {"text": np.zeros((n_i, 5), np.float32)})
    assert main(["predict", "--model", str(tmp_path / "model"), "--features", str(tmp_path / "g.npz")]) == 2
    assert "FeatureMismatchError" in capsys.readouterr().err


def test_content_table_missing_items() -> None:
    from cb2cf.bench.movielens import movie_views

    movies = pd.DataFrame({"item_id": ["1"], "title": ["A (1999)"], "genres": ["Drama"]})
    with pytest.raises(ContentError, match="missing from movies.csv"):
        movie_views(movies, None, np.array(["1", "2"]))
