"""The cold-start benchmark end to end, on a small MovieLens-layout directory with a known structure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cb2cf.bench.benchmark import prepare_split
from cb2cf.cli import main

GENRES = {"Comedy": "funny laughs", "Horror": "scary monster", "Western": "cowboy desert", "Romance": "love story"}


def _movielens(d: Path, n_movies: int = 480, n_users: int = 80, seed: int = 0) -> Path:
    """Users like one genre; a movie's genre shows in its title, genres and tags; popularity varies."""
    rng = np.random.default_rng(seed)
    names = list(GENRES)
    genre = rng.integers(0, len(names), n_movies)
    appeal = rng.uniform(0.05, 0.6, n_movies)
    movies = pd.DataFrame({"movieId": np.arange(1, n_movies + 1),
                           "title": [f"The {GENRES[names[g]].split()[i % 2]} film number {i} ({1950 + i % 60})"
                                     for i, g in enumerate(genre)],
                           "genres": [names[g] for g in genre]})
    taste = rng.integers(0, len(names), n_users)
    rows = [(u + 1, m + 1, 4.0, 1_000_000 + m) for u in range(n_users) for m in range(n_movies)
            if (taste[u] == genre[m] and rng.random() < appeal[m]) or rng.random() < 0.01]
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    tagged = rng.choice(n_movies, n_movies // 3, replace=False)
    tags = pd.DataFrame({"userId": 1, "movieId": tagged + 1, "tag": [GENRES[names[genre[m]]] for m in tagged],
                         "timestamp": 0})
    d.mkdir(parents=True, exist_ok=True)
    movies.to_csv(d / "movies.csv", index=False)
    ratings.to_csv(d / "ratings.csv", index=False)
    tags.to_csv(d / "tags.csv", index=False)
    return d


def test_split_is_seeded_and_disjoint(tmp_path: Path) -> None:
    d = _movielens(tmp_path / "ml")
    a = prepare_split(d, seed=3, cache_dir=tmp_path / "cache")
    b = prepare_split(d, seed=3, cache_dir=tmp_path / "cache")
    assert list(a.cold_test) == list(b.cold_test) and np.allclose(a.space.item_vectors, b.space.item_vectors)
    assert not set(a.warm_items) & (set(a.cold_val) | set(a.cold_test)) and not set(a.cold_val) & set(a.cold_test)
    rated = pd.read_csv(d / "ratings.csv")["movieId"].nunique()
    assert len(a.cold_val) + len(a.cold_test) == round(0.2 * rated) and abs(len(a.cold_val) - len(a.cold_test)) <= 1
    test = a.item_set("test")
    assert test.features["title"].shape == (len(a.cold_test), 384) and test.interactions.shape == (len(a.users), len(a.cold_test))


def test_benchmark_cli_prints_the_table_and_writes_json(tmp_path: Path, capsys) -> None:
    d = _movielens(tmp_path / "ml")
    out = tmp_path / "res.json"
    model_dir = tmp_path / "model"
    assert main(["benchmark", "--dataset", str(d), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--max-seconds", "20", "--save-model", str(model_dir), "--extra-train-seeds", "1"]) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    methods = ["random", "most popular (test counts, leaky)", "content kNN", "ridge", "CB2CF", "warm oracle (ceiling)"]
    mean = res["results"].pop("CB2CF, mean of training seeds 0, 1")
    assert list(res["results"]) == methods and "| CB2CF, mean of training seeds 0, 1 |" in printed
    assert mean["std_recall@20"] >= 0 and 0 < mean["recall@20"] <= 1
    for m in methods:
        assert f"| {m} |" in printed
    r = {m: res["results"][m] for m in methods}
    assert r["CB2CF"]["users"] == r["ridge"]["users"] > 0
    # taste is one genre, visible in the content: every content method is far above random
    for m in ("content kNN", "ridge", "CB2CF"):
        assert r[m]["ndcg@10"] > 2 * r["random"]["ndcg@10"], m
    assert r["warm oracle (ceiling)"]["recall@20"] >= r["random"]["recall@20"]
    assert "CB2CF Recall@20 / best content baseline" in printed and "Audience" in printed
    aud = res["results_audience"]
    assert "most active users (warm-train counts)" in aud and "most popular (test counts, leaky)" not in aud
    assert aud["CB2CF"]["ndcg@20"] > 1.5 * aud["random"]["ndcg@20"] and aud["CB2CF"]["users"] > 0  # 80 users only
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "space" / "space.json").is_file()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["metrics"]["test_recall@20"] == r["CB2CF"]["recall@20"]
