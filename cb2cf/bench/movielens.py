"""MovieLens "latest" CSV layout -> interactions and content views.

Views built per movie:

* ``title``: "Title (year). Genres: a, b, c" through the project's text extractor;
* ``tags``: the movie's user tags joined, through the same extractor (masked when the
  movie has no tags);
* ``genres``: multi-hot over the 20 MovieLens genres;
* ``year``: one-hot of the release decade (masked when the title has no year).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cb2cf.bench.embed import TextEmbedder, cached_embed, load_text_embedder
from cb2cf.errors import ContentError
from cb2cf.features import ViewSpec
from cb2cf.interactions import read_log, validate_log

logger = logging.getLogger(__name__)

DECADES = list(range(1900, 2030, 10))


def load_movielens(dataset: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, dict]:
    """Read ratings.csv, movies.csv and optional tags.csv.

    Returns:
        (ratings, movies, tags, report); ratings validated (ids as strings); rated
        movies missing from movies.csv are dropped and counted in the report.

    Raises:
        ContentError: The directory or movies.csv is missing.
        InteractionLogError: ratings.csv is malformed.
    """
    d = Path(dataset)
    if not (d / "movies.csv").is_file():
        raise ContentError(f"{d}: movies.csv not found (expected the MovieLens 'latest' layout)")
    movies = pd.read_csv(d / "movies.csv", dtype={"movieId": str})
    movies = movies.rename(columns={"movieId": "item_id"})
    ratings, report = validate_log(read_log(d / "ratings.csv"))
    known = set(movies["item_id"])
    bad = ~ratings["item_id"].isin(known)
    if bad.any():
        logger.warning("dropping %d ratings of %d movies missing from movies.csv",
                       int(bad.sum()), ratings.loc[bad, "item_id"].nunique())
    report["dropped_items_without_content"] = int(bad.sum())
    ratings = ratings.loc[~bad].reset_index(drop=True)
    tags = None
    if (d / "tags.csv").is_file():
        tags = pd.read_csv(d / "tags.csv", dtype={"movieId": str, "tag": str}).rename(columns={"movieId": "item_id"})
    return ratings, movies, tags, report


def movie_views(movies: pd.DataFrame, tags: pd.DataFrame | None, item_ids: np.ndarray,
                cache_dir: str | Path | None = None, embedder: TextEmbedder | None = None,
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[ViewSpec]]:
    """Build the four content views for ``item_ids`` (order kept).

    Args:
        movies: movies.csv rows.
        tags: tags.csv rows, or None.
        item_ids: Items to build views for.
        cache_dir: Where text embeddings are cached.
        embedder: Text model for the title and tag views (default: ``load_text_embedder()``).

    Raises:
        ContentError: An item is missing from movies.csv.
    """
    m = movies.set_index("item_id").reindex([str(i) for i in item_ids])
    if m["title"].isna().any():
        raise ContentError(f"{int(m['title'].isna().sum())} items missing from movies.csv")
    genres_all = sorted({g for gs in movies["genres"] for g in str(gs).split("|")})
    years = m["title"].str.extract(r"\((\d{4})\)\s*$")[0]
    clean = m["title"].str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True)
    gl = m["genres"].fillna("").str.split("|")
    title_txt = [f"{t} ({y}). Genres: {', '.join(g)}" if isinstance(y, str) else f"{t}. Genres: {', '.join(g)}"
                 for t, y, g in zip(clean, years, gl)]
    tag_txt = [""] * len(m)
    if tags is not None:
        tg = tags.dropna(subset=["tag"]).groupby("item_id")["tag"].apply(
            lambda s: ", ".join(dict.fromkeys(t.strip().lower() for t in s)))
        tag_txt = [tg.get(str(i), "") for i in item_ids]
    embedder = embedder if embedder is not None else load_text_embedder()
    ext_id, embed = embedder.extractor_id, cached_embed(embedder, cache_dir)
    has_tags = np.array([bool(t) for t in tag_txt])
    X_title = embed(title_txt)
    X_tags = np.zeros_like(X_title)
    if has_tags.any():
        X_tags[has_tags] = embed([t for t in tag_txt if t])
    G = np.zeros((len(m), len(genres_all)), np.float32)
    gidx = {g: j for j, g in enumerate(genres_all)}
    for r, gs in enumerate(gl):
        for g in gs:
            if g in gidx:
                G[r, gidx[g]] = 1.0
    Y = np.zeros((len(m), len(DECADES)), np.float32)
    has_year = years.notna().to_numpy()
    for r, y in enumerate(years):
        if isinstance(y, str):
            Y[r, int(np.clip((int(y) - DECADES[0]) // 10, 0, len(DECADES) - 1))] = 1.0
    feats = {"title": X_title, "tags": X_tags, "genres": G, "year": Y}
    masks = {"title": np.ones(len(m), bool), "tags": has_tags, "genres": G.sum(1) > 0, "year": has_year}
    specs = [ViewSpec("title", X_title.shape[1], ext_id), ViewSpec("tags", X_tags.shape[1], ext_id),
             ViewSpec("genres", G.shape[1], "movielens-genres-multihot@1"),
             ViewSpec("year", Y.shape[1], "movielens-decade-onehot@1")]
    return feats, masks, specs


def concat_views(feats: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
    """Concatenate views, each block L2-normalised and zeroed where missing (baselines)."""
    blocks = []
    for k in sorted(feats):
        x = feats[k] * masks[k][:, None]
        n = np.linalg.norm(x, axis=1, keepdims=True)
        blocks.append(x / np.maximum(n, 1e-8))
    return np.concatenate(blocks, 1).astype(np.float32)


