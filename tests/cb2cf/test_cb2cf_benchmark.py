"""The cold-start benchmark end to end, on a small MovieLens-layout directory with a known structure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cb2cf.bench.benchmark import format_table, prepare_split
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


METHODS = ["random", "most popular (test counts, leaky)", "content kNN", "ridge", "ridge + magnitude scaling",
           "DropoutNet", "Heater", "CLCRec", "ALDI", "CB2CF", "CB2CF + magnitude scaling", "warm oracle"]


def test_benchmark_cli_over_seeds_prints_mean_and_spread_and_writes_json(tmp_path: Path, capsys) -> None:
    d = _movielens(tmp_path / "ml")
    out = tmp_path / "res.json"
    model_dir = tmp_path / "model"
    assert main(["benchmark", "--dataset", str(d), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--save-model", str(model_dir), "--seeds", "0", "1"]) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    summary = res["summary"]
    assert list(summary["results"]) == METHODS and summary["seeds"] == [0, 1] and len(res["runs"]) == 2
    for m in METHODS:
        assert f"| {m} |" in printed
        row = summary["results"][m]
        assert row["seeds_ok"] == 2 and row["recall@20"]["std"] >= 0 and 0 <= row["recall@20"]["mean"] <= 1, m
    assert " ± " in printed and "CB2CF Recall@20 / best other method" in printed and "Audience" in printed
    mean = {m: summary["results"][m]["ndcg@10"]["mean"] for m in METHODS}
    # taste is one genre, visible in the content: every content method is far above random
    for m in ("content kNN", "ridge", "DropoutNet", "Heater", "CLCRec", "ALDI", "CB2CF"):
        assert mean[m] > 2 * mean["random"], m
    run = res["runs"][0]
    assert run["results"]["CB2CF"]["stopped_by"] in ("patience", "max_epochs")  # not the wall-clock guard
    assert run["results"]["CB2CF"]["start"]["kind"] in ("kernel", "ridge")  # which closed-form start was kept
    assert run["results"]["ridge + magnitude scaling"]["a"] >= 0 and "magnitude_a" in run["results"]["ALDI"]
    aud = summary["results_audience"]
    assert "most active users (warm-train counts)" in aud and "most popular (test counts, leaky)" not in aud
    assert {"standing"} <= set(summary) and summary["standing"]["best_other_method"] in METHODS
    assert len(summary["standing"]["cb2cf_over_best_other_per_seed"]) == 2 and "per seed (same split)" in printed
    assert summary["standing"]["seeds_compared"] == 2 and "paired (per-seed difference" in printed
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "space" / "space.json").is_file()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["metrics"]["test_recall@20"] == run["results"]["CB2CF"]["recall@20"]


def test_second_dataset_drops_a_view_and_a_failing_method_is_reported(tmp_path: Path, monkeypatch) -> None:
    from cb2cf.bench import methods
    from cb2cf.bench.benchmark import run_seeds
    from cb2cf.errors import TrainingError

    d = _movielens(tmp_path / "ml")

    def diverges(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - a peer whose loss turns NaN
        raise TrainingError("Heater: loss is nan at epoch 3")

    monkeypatch.setattr(methods, "run_peer", diverges)
    res = run_seeds(d, (0, 5), cache_dir=tmp_path / "cache", drop_views=("tags",), peers=("Heater",))
    run = res["runs"][0]
    assert [v["name"] for v in run["views"]] == ["title", "genres", "year"]
    assert run["results"]["Heater"] == {"failed": "TrainingError: Heater: loss is nan at epoch 3"}
    heater = res["summary"]["results"]["Heater"]
    assert heater["seeds_ok"] == 0 and len(heater["failed"]) == 2 and "seed 0: TrainingError" in heater["failed"][0]
    assert res["summary"]["results"]["CB2CF"]["seeds_ok"] == 2  # the others finished
    assert "| Heater | failed: TrainingError" in format_table(run)


def test_standing_reports_the_paired_lead_with_a_known_answer() -> None:
    """Seeds of different difficulty: the sum of the stds hides a lead every seed shows."""
    from cb2cf.bench.report import summarize

    def run(seed: int, cb: float, ridge: float) -> dict:
        res = {"CB2CF": {"recall@20": cb}, "ridge": {"recall@20": ridge}, "warm oracle": {"recall@20": 0.9}}
        return {"seed": seed, "results": res, "results_audience": {}}

    st = summarize([run(0, 0.42, 0.40), run(1, 0.32, 0.30), run(2, 0.23, 0.20)])["standing"]
    assert st["best_other_method"] == "ridge"
    assert np.isclose(st["lead_recall@20"], 0.07 / 3) and not st["ahead_by_more_than_spread"]
    assert np.isclose(st["paired_lead_recall@20"], 0.07 / 3)
    assert np.isclose(st["paired_spread_recall@20"], np.std([0.02, 0.02, 0.03], ddof=1))
    assert st["seeds_won"] == 3 and st["seeds_compared"] == 3 and st["ahead_by_more_than_paired_spread"]
    assert np.isclose(st["paired_stderr_recall@20"], st["paired_spread_recall@20"] / np.sqrt(3))
    assert st["sign_test_p"] == 0.125  # 3 of 3 seeds won: (1/2)^3
    assert st["seeds_best_of_all"] == {"0": "CB2CF", "1": "CB2CF", "2": "CB2CF"}
    runs = [run(0, 0.42, 0.40), run(1, 0.32, 0.30)]
    runs[1]["results"]["CLCRec"] = {"recall@20": 0.34}  # best on one split (0.34 > 0.32), not on the mean (0.34 < 0.35)
    st = summarize(runs)["standing"]
    assert st["best_other_method"] == "ridge" and st["seeds_best_of_all"] == {"0": "CB2CF", "1": "CLCRec"}
    one = summarize([run(0, 0.42, 0.40)])["standing"]
    assert one["paired_spread_recall@20"] == 0.0 and not one["ahead_by_more_than_paired_spread"]
