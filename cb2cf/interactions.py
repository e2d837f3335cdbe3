"""Reading and validating interaction logs.

An interaction log is a CSV or parquet table with columns ``user_id``, ``item_id`` and
optionally ``weight`` (or ``rating``) and ``timestamp``. Validation never silently
repairs data: every problem raises :class:`~cb2cf.errors.InteractionLogError` naming the
problem, unless the caller opts into a documented policy whose drop counts are returned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cb2cf.errors import InteractionLogError

logger = logging.getLogger(__name__)

_ALIASES = {"userId": "user_id", "movieId": "item_id", "itemId": "item_id", "rating": "weight"}
DUPLICATE_POLICIES = ("error", "sum", "max", "last")


@dataclass
class Interactions:
    """A validated user x item matrix with its id maps.

    Attributes:
        user_ids: Row ids (strings), shape (n_users,).
        item_ids: Column ids (strings), shape (n_items,).
        matrix: CSR float32 matrix (n_users, n_items) of weights.
        report: Counts of anything dropped or merged under an opt-in policy.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    matrix: sp.csr_matrix
    report: dict[str, int] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_users, n_items)."""
        return self.matrix.shape  # type: ignore[return-value]


def read_log(path: str | Path) -> pd.DataFrame:
    """Read an interaction log from CSV or parquet and normalise its column names.

    ``userId``/``movieId``/``rating`` (MovieLens) are renamed to
    ``user_id``/``item_id``/``weight``.

    Args:
        path: A ``.csv`` or ``.parquet`` file.

    Returns:
        A DataFrame with at least ``user_id`` and ``item_id``.

    Raises:
        InteractionLogError: The file is missing, unreadable or lacks the id columns.
    """
    path = Path(path)
    if not path.is_file():
        raise InteractionLogError(f"{path}: interaction log not found")
    id_cols = {k: str for k in ("user_id", "item_id", *(a for a, v in _ALIASES.items() if v in ("user_id", "item_id")))}
    try:  # ids stay strings: "007" is not "7"
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=id_cols)
    except Exception as exc:  # noqa: BLE001 - re-raised typed
        raise InteractionLogError(f"{path}: cannot read interaction log: {exc}") from exc
    df = df.rename(columns={k: v for k, v in _ALIASES.items() if k in df.columns})
    for col in ("user_id", "item_id"):
        if col not in df.columns:
            raise InteractionLogError(f"{path}: missing column {col!r} (have {list(df.columns)})")
    return df


def _ids_as_str(col: pd.Series, name: str) -> pd.Series:
    if col.isna().any():
        raise InteractionLogError(f"{int(col.isna().sum())} rows have an empty {name}")
    out = col.astype(str).str.strip()
    empty = out == ""
    if empty.any():
        raise InteractionLogError(f"{int(empty.sum())} rows have an empty {name}")
    return out


def _normalized_columns(df: pd.DataFrame, duplicates: str) -> pd.DataFrame:
    """``df`` with MovieLens column names renamed, checked for a known policy, id columns and rows.

    Raises:
        InteractionLogError: Unknown ``duplicates`` policy, a missing id column, or an empty log.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise InteractionLogError(f"duplicates policy must be one of {DUPLICATE_POLICIES}")
    df = df.rename(columns={k: v for k, v in _ALIASES.items() if k in df.columns})
    for col in ("user_id", "item_id"):
        if col not in df.columns:
            raise InteractionLogError(f"missing column {col!r} (have {list(df.columns)})")
    if len(df) == 0:
        raise InteractionLogError("interaction log is empty")
    return df


def _add_weights(df: pd.DataFrame, out: pd.DataFrame, report: dict[str, int]) -> pd.DataFrame:
    """Add ``weight`` (1.0 when absent) to ``out``; rows of weight 0 are dropped and counted in ``report``.

    Raises:
        InteractionLogError: NaN/non-numeric, infinite or negative weights.
    """
    if "weight" not in df.columns:
        out["weight"] = np.float32(1.0)
        return out
    w = pd.to_numeric(df["weight"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(w).any():
        raise InteractionLogError(f"{int(np.isnan(w).sum())} rows have a NaN or non-numeric weight")
    if np.isinf(w).any():
        raise InteractionLogError(f"{int(np.isinf(w).sum())} rows have an infinite weight")
    if (w < 0).any():
        raise InteractionLogError(f"{int((w < 0).sum())} rows have a negative weight")
    out["weight"] = w.astype(np.float32)
    zero = w == 0  # no signal: dropped (and counted) so binary matrices never turn them into positives
    report["dropped_zero_weight"] = int(zero.sum())
    if zero.any():
        logger.warning("dropping %d interactions with weight 0", int(zero.sum()))
        out = out.loc[~zero]
    return out


def _drop_unknown(out: pd.DataFrame, col: str, known: Sequence[str] | None, key: str, drop_unknown: bool,
                  report: dict[str, int]) -> pd.DataFrame:
    """Rows of ``out`` whose ``col`` is in ``known`` (all rows when ``known`` is None); drops counted.

    Raises:
        InteractionLogError: Unknown ids and not ``drop_unknown``.
    """
    if known is None:
        return out
    bad = ~out[col].isin(pd.Index([str(k) for k in known]))
    n_bad = int(bad.sum())
    if n_bad and not drop_unknown:
        examples = out.loc[bad, col].unique()[:5].tolist()
        raise InteractionLogError(f"{n_bad} rows reference unknown {key}, e.g. {examples}")
    report[f"dropped_unknown_{key}"] = n_bad
    return out.loc[~bad]


def _merge_duplicates(out: pd.DataFrame, duplicates: str) -> tuple[pd.DataFrame, int]:
    """Merge repeated (user, item) rows under the ``duplicates`` policy; returns the table and their count.

    Raises:
        InteractionLogError: Duplicates under ``duplicates="error"``.
    """
    dup = out.duplicated(["user_id", "item_id"], keep=False)
    n_dup = int(out.duplicated(["user_id", "item_id"]).sum())
    if not n_dup:
        return out, n_dup
    if duplicates == "error":
        ex = out.loc[dup, ["user_id", "item_id"]].head(3).values.tolist()
        raise InteractionLogError(f"{n_dup} duplicate (user_id, item_id) rows, e.g. {ex}; "
                                  "pass duplicates='sum'|'max'|'last' to merge them")
    if duplicates == "last":
        if "timestamp" in out.columns:
            out = out.sort_values("timestamp", kind="stable")
        out = out.drop_duplicates(["user_id", "item_id"], keep="last")
    else:
        agg = {"weight": duplicates}
        if "timestamp" in out.columns:
            agg["timestamp"] = "max"
        out = out.groupby(["user_id", "item_id"], as_index=False, sort=False).agg(agg)
    logger.info("merged %d duplicate interactions with policy %r", n_dup, duplicates)
    return out, n_dup


def validate_log(
    df: pd.DataFrame,
    *,
    known_users: Sequence[str] | None = None,
    known_items: Sequence[str] | None = None,
    duplicates: str = "error",
    drop_unknown: bool = False,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Check an interaction table and return a clean copy.

    Ids become strings. Weights default to 1.0 when absent.

    Args:
        df: Table with ``user_id``, ``item_id`` and optional ``weight``/``timestamp``.
        known_users: If given, every user id must be in it.
        known_items: If given, every item id must be in it (e.g. a content table).
        duplicates: Policy for repeated (user, item) pairs: ``"error"`` (default),
            ``"sum"``, ``"max"`` or ``"last"`` (by timestamp when present).
        drop_unknown: Drop (and count) rows with unknown ids instead of raising.

    Returns:
        The clean table (columns user_id, item_id, weight[, timestamp]) and a report of
        counts (rows_in, rows_out, dropped_zero_weight, dropped_unknown_users,
        dropped_unknown_items, merged_duplicates). Rows with weight 0 carry no signal and
        are dropped (counted), so a binary matrix never makes them positives.

    Raises:
        InteractionLogError: Empty log, empty ids, NaN/negative/infinite weights, unknown
            ids (unless ``drop_unknown``), or duplicates under ``duplicates="error"``.
    """
    df = _normalized_columns(df, duplicates)
    report = {"rows_in": int(len(df))}
    out = pd.DataFrame({"user_id": _ids_as_str(df["user_id"], "user_id"),
                        "item_id": _ids_as_str(df["item_id"], "item_id")})
    if "timestamp" in df.columns:  # before any row is dropped, so it stays aligned
        out["timestamp"] = df["timestamp"].to_numpy()
    out = _add_weights(df, out, report)
    out = _drop_unknown(out, "user_id", known_users, "users", drop_unknown, report)
    out = _drop_unknown(out, "item_id", known_items, "items", drop_unknown, report)
    out, report["merged_duplicates"] = _merge_duplicates(out, duplicates)
    if len(out) == 0:
        raise InteractionLogError("no interactions left after validation")
    report["rows_out"] = int(len(out))
    return out.reset_index(drop=True), report


def to_matrix(
    df: pd.DataFrame,
    user_ids: Sequence[str] | None = None,
    item_ids: Sequence[str] | None = None,
    *,
    binary: bool = False,
) -> Interactions:
    """Build a CSR user x item matrix from a validated table.

    Args:
        df: Output of :func:`validate_log`.
        user_ids: Row order; default: sorted unique users of ``df``.
        item_ids: Column order; default: sorted unique items of ``df``.
        binary: Use 1.0 for every interaction instead of its weight.

    Returns:
        The :class:`Interactions`.

    Raises:
        InteractionLogError: ``df`` has ids outside the given ``user_ids``/``item_ids``.
    """
    u_ids = np.asarray(sorted(df["user_id"].unique()) if user_ids is None else [str(u) for u in user_ids])
    i_ids = np.asarray(sorted(df["item_id"].unique()) if item_ids is None else [str(i) for i in item_ids])
    u_idx = pd.Index(u_ids).get_indexer(df["user_id"])
    i_idx = pd.Index(i_ids).get_indexer(df["item_id"])
    if (u_idx < 0).any() or (i_idx < 0).any():
        raise InteractionLogError(f"{int((u_idx < 0).sum())} unknown users and "
                                  f"{int((i_idx < 0).sum())} unknown items in interactions")
    w = np.ones(len(df), np.float32) if binary else df["weight"].to_numpy(np.float32)
    m = sp.csr_matrix((w, (u_idx, i_idx)), shape=(len(u_ids), len(i_ids)), dtype=np.float32)
    m.sum_duplicates()
    return Interactions(u_ids.astype(str), i_ids.astype(str), m)
