"""The CF space: user and item vectors with their ids, an id and a version.

A space is either imported (a recommender already in production hands over its
vectors) or trained from an interaction log with ``implicit``'s ALS/BPR. On disk it is
a directory with ``space.json`` (id, version, ids, metadata) and ``space.safetensors``
(``user_vectors``, ``item_vectors``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cb2cf.errors import ModelFileError, SpaceError, UnknownIdError
from cb2cf.interactions import Interactions

logger = logging.getLogger(__name__)

SPACE_JSON = "space.json"
SPACE_TENSORS = "space.safetensors"


@dataclass
class CFSpace:
    """User and item vectors of a collaborative-filtering model.

    Attributes:
        space_id: Stable name of the space (e.g. ``"ml-latest-small-als"``).
        version: Version string; defaults to a hash of the vectors.
        user_ids: (n_users,) string ids.
        user_vectors: (n_users, dim) float32.
        item_ids: (n_items,) string ids.
        item_vectors: (n_items, dim) float32.
        meta: Free-form provenance (library, hyper-parameters, data fingerprint).
    """

    space_id: str
    version: str
    user_ids: np.ndarray
    user_vectors: np.ndarray
    item_ids: np.ndarray
    item_vectors: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.user_ids = np.asarray([str(u) for u in self.user_ids])
        self.item_ids = np.asarray([str(i) for i in self.item_ids])
        self.user_vectors = np.ascontiguousarray(self.user_vectors, dtype=np.float32)
        self.item_vectors = np.ascontiguousarray(self.item_vectors, dtype=np.float32)
        uv, iv = self.user_vectors, self.item_vectors
        if uv.ndim != 2 or iv.ndim != 2 or uv.shape[1] != iv.shape[1]:
            raise SpaceError(f"user/item vectors must be 2-D with one dim, got {uv.shape} and {iv.shape}")
        if len(self.user_ids) != len(uv) or len(self.item_ids) != len(iv):
            raise SpaceError("number of ids does not match number of vectors")
        if len(set(self.user_ids)) != len(self.user_ids) or len(set(self.item_ids)) != len(self.item_ids):
            raise SpaceError("user or item ids are not unique")
        if not (np.isfinite(uv).all() and np.isfinite(iv).all()):
            raise SpaceError("space vectors contain NaN or inf")
        if not self.version:
            self.version = self.fingerprint()[:12]
        self._uidx = {u: i for i, u in enumerate(self.user_ids)}
        self._iidx = {u: i for i, u in enumerate(self.item_ids)}

    @property
    def dim(self) -> int:
        """Dimension of the space."""
        return int(self.item_vectors.shape[1])

    @property
    def ref(self) -> str:
        """``"<space_id>@<version>"``."""
        return f"{self.space_id}@{self.version}"

    def has_user(self, user_id: str) -> bool:
        """Whether the space has a vector for this user."""
        return str(user_id) in self._uidx

    def user_index(self, user_id: str) -> int:
        """Row of a user. Raises: UnknownIdError: not in the space."""
        try:
            return self._uidx[str(user_id)]
        except KeyError:
            raise UnknownIdError(f"user {user_id!r} is not in space {self.ref}") from None

    def item_index(self, item_id: str) -> int:
        """Row of an item. Raises: UnknownIdError: not in the space."""
        try:
            return self._iidx[str(item_id)]
        except KeyError:
            raise UnknownIdError(f"item {item_id!r} is not in space {self.ref}") from None

    def item_vector(self, item_id: str) -> np.ndarray:
        """Vector of one item. Raises: UnknownIdError: not in the space."""
        return self.item_vectors[self.item_index(item_id)]

    def fingerprint(self) -> str:
        """SHA-256 of ids and vectors."""
        h = hashlib.sha256()
        for a in (self.user_ids, self.item_ids):
            h.update("\n".join(a.tolist()).encode())
        h.update(self.user_vectors.tobytes())
        h.update(self.item_vectors.tobytes())
        return h.hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write ``space.json`` + ``space.safetensors`` into directory ``path``."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({"user_vectors": self.user_vectors, "item_vectors": self.item_vectors},
                  str(path / SPACE_TENSORS))
        doc = {"space_id": self.space_id, "version": self.version, "dim": self.dim,
               "fingerprint": self.fingerprint(), "meta": self.meta,
               "user_ids": self.user_ids.tolist(), "item_ids": self.item_ids.tolist()}
        (path / SPACE_JSON).write_text(json.dumps(doc))
        return path

    @classmethod
    def load(cls, path: str | Path) -> CFSpace:
        """Load a space saved by :meth:`save`.

        Raises:
            ModelFileError: Files missing, truncated, not JSON/safetensors, or the
                fingerprint does not match.
        """
        from safetensors.numpy import load_file

        path = Path(path)
        for name in (SPACE_JSON, SPACE_TENSORS):
            if not (path / name).is_file():
                raise ModelFileError(f"{path}: missing {name}")
        try:
            doc = json.loads((path / SPACE_JSON).read_text())
            tensors = load_file(str(path / SPACE_TENSORS))
            space = cls(doc["space_id"], doc["version"], np.asarray(doc["user_ids"]),
                        tensors["user_vectors"], np.asarray(doc["item_ids"]),
                        tensors["item_vectors"], doc.get("meta", {}))
        except (ValueError, KeyError, OSError, SpaceError) as exc:
            raise ModelFileError(f"{path}: cannot load CF space: {exc}") from exc
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise ModelFileError(f"{path}: cannot load CF space: {exc}") from exc
        if doc.get("fingerprint") and doc["fingerprint"] != space.fingerprint():
            raise ModelFileError(f"{path}: space fingerprint mismatch (files modified or truncated)")
        return space


def _read_vectors(source: str | Path, id_column: str, vector_column: str,
                  table: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Ids and vectors from one source; every failure is a :class:`SpaceError` naming it."""
    source = str(source)
    where = f"{source} (table {table!r})" if table is not None else source
    try:
        ids, vecs = _read_source(source, id_column, vector_column, table)
    except SpaceError:
        raise
    except Exception as exc:  # noqa: BLE001 - missing files/tables, ragged or null vectors: re-raised typed
        raise SpaceError(f"{where}: cannot read vectors: {type(exc).__name__}: {exc}") from exc
    col = pd.Series(ids, dtype=object)
    bad_ids = np.flatnonzero(col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy())
    if len(bad_ids):
        raise SpaceError(f"{where}: {len(bad_ids)} rows have an empty id (e.g. row {bad_ids[0]})")
    if vecs.ndim != 2 or len(vecs) != len(ids):
        raise SpaceError(f"{where}: expected one vector per id, got {len(ids)} ids and vectors of shape {vecs.shape}")
    if not np.isfinite(vecs).all():
        raise SpaceError(f"{where}: vectors contain NaN/inf")
    return np.asarray([str(i) for i in ids]), vecs


def _read_source(source: str, id_column: str, vector_column: str, table: str | None) -> tuple[np.ndarray, np.ndarray]:
    if table is not None:  # LanceDB
        import lancedb

        df = lancedb.connect(source).open_table(table).to_pandas()
    elif source.endswith(".parquet"):
        df = pd.read_parquet(source)
    elif source.endswith(".npz"):
        z = np.load(source, allow_pickle=False)
        return np.asarray(z["ids"]).astype(str), np.asarray(z["vectors"], np.float32)
    elif source.endswith(".npy"):
        ids_path = Path(source[:-4] + ".ids.txt")
        if not ids_path.is_file():
            raise SpaceError(f"{source}: .npy vectors need their ids in {ids_path.name}")
        ids = [line for line in ids_path.read_text().splitlines() if line.strip()]
        return np.asarray(ids), np.load(source, allow_pickle=False).astype(np.float32)
    else:
        raise SpaceError(f"{source}: unsupported vector source (parquet, npz, npy, LanceDB)")
    for col in (id_column, vector_column):
        if col not in df.columns:
            raise SpaceError(f"{source}: missing column {col!r}")
    if df[vector_column].isna().any():
        raise SpaceError(f"{source}: {int(df[vector_column].isna().sum())} rows have a null vector")
    return df[id_column].to_numpy(dtype=object), np.stack(df[vector_column].to_numpy()).astype(np.float32)


def import_space(space_id: str, users: str | Path, items: str | Path, *, version: str = "",
                 id_column: str = "id", vector_column: str = "vector",
                 users_table: str | None = None, items_table: str | None = None) -> CFSpace:
    """Import an existing CF space from parquet/npz/npy files or LanceDB tables.

    Args:
        space_id: Name to give the space.
        users: Path of the user vectors (or LanceDB URI when ``users_table`` is given).
        items: Path of the item vectors (or LanceDB URI when ``items_table`` is given).
        version: Version string; default: a hash of the vectors.
        id_column: Id column for parquet/LanceDB.
        vector_column: Vector (fixed-size list) column for parquet/LanceDB.
        users_table: LanceDB table of users.
        items_table: LanceDB table of items.

    Returns:
        The :class:`CFSpace`.

    Raises:
        SpaceError: Unsupported source, missing columns, or inconsistent vectors.
    """
    u_ids, u_vec = _read_vectors(users, id_column, vector_column, users_table)
    i_ids, i_vec = _read_vectors(items, id_column, vector_column, items_table)
    return CFSpace(space_id, version, u_ids, u_vec, i_ids, i_vec,
                   {"source": {"users": str(users), "items": str(items)}})


@dataclass
class SpaceConfig:
    """Hyper-parameters of the implicit-feedback factorisation."""

    algorithm: str = "als"  # "als" or "bpr"
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 10.0
    iterations: int = 20
    learning_rate: float = 0.01  # BPR only
    binary: bool = True
    seed: int = 0
    num_threads: int = 0  # 0 = all cores


def train_space(inter: Interactions, config: SpaceConfig | None = None, *, space_id: str = "cf",
                version: str = "", show_progress: bool = False) -> CFSpace:
    """Fit an implicit-feedback MF model (``implicit`` ALS or BPR) on an interaction matrix.

    Uses the GPU implementation when ``implicit`` was built with CUDA and a GPU is present.

    Args:
        inter: Validated interactions (users x items).
        config: Hyper-parameters.
        space_id: Name of the resulting space.
        version: Version string; default: a hash of the vectors.
        show_progress: Show implicit's progress bar.

    Returns:
        The trained :class:`CFSpace`.

    Raises:
        SpaceError: Unknown algorithm, or the factorisation produced non-finite vectors.
    """
    import implicit
    import implicit.gpu

    cfg = config or SpaceConfig()
    m = inter.matrix.copy()
    if cfg.binary:
        m.data[:] = 1.0
    threads = cfg.num_threads or (os.cpu_count() or 1)
    gpu = bool(implicit.gpu.HAS_CUDA)
    if cfg.algorithm == "als":
        from implicit.als import AlternatingLeastSquares

        model = AlternatingLeastSquares(factors=cfg.factors, regularization=cfg.regularization,
                                        alpha=cfg.alpha, iterations=cfg.iterations,
                                        random_state=cfg.seed, num_threads=threads, use_gpu=gpu)
    elif cfg.algorithm == "bpr":
        from implicit.bpr import BayesianPersonalizedRanking

        model = BayesianPersonalizedRanking(factors=cfg.factors, learning_rate=cfg.learning_rate,
                                            regularization=cfg.regularization, iterations=cfg.iterations,
                                            random_state=cfg.seed, num_threads=threads, use_gpu=gpu)
    else:
        raise SpaceError(f"unknown algorithm {cfg.algorithm!r} (als, bpr)")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit parallelises itself; BLAS threads would oversubscribe
        model.fit(m.tocsr(), show_progress=show_progress)  # implicit>=0.5: fit takes user_items (users x items)
    if gpu:
        model = model.to_cpu()
    meta = {"library": f"implicit=={implicit.__version__}", "config": asdict(cfg),
            "n_users": int(m.shape[0]), "n_items": int(m.shape[1]), "nnz": int(m.nnz)}
    return CFSpace(space_id, version, inter.user_ids, np.asarray(model.user_factors),
                   inter.item_ids, np.asarray(model.item_factors), meta)
