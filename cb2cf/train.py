"""Training loop for CB2CF (flat, nanoGPT-style).

Loss per batch of warm items (predicted vectors P, true CF vectors T, user vectors U):

* ``w_cos * (1 - cos(P, T)) + w_mse * ||P - T||^2 / mean ||T||^2``: regress the vectors;
* ``w_users``: for each item, a softmax over users of ``P @ U.T`` with the item's own
  users as positives (the right users rank first: who to seed the item to);
* ``w_items``: for each user, a softmax over the batch's items with the user's items as
  positives (the item ranks well in its users' lists: what the cold-start metric
  measures).

Early stopping on Recall@k of a validation split of *cold* items. Seeded and
deterministic on CPU.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from tqdm import tqdm

from cb2cf.errors import ContentError, TrainingError
from cb2cf.features import ViewSpec, fingerprint_features, normalize_features
from cb2cf.kernel import kernel_start
from cb2cf.metrics import evaluate, validation_problems
from cb2cf.model import CB2CF, default_device, library_versions
from cb2cf.ridge import select_ridge_alpha
from cb2cf.space import CFSpace

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters of CB2CF training."""

    name: str = "cb2cf"
    tower_dim: int = 128
    hidden_dim: int = 256
    dropout: float = 0.2
    input_dropout: float = 0.2
    view_dropout: float = 0.25
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_epochs: int = 200
    patience: int = 15
    w_cos: float = 0.0  # vector regression comes from the ridge-initialised linear path
    w_mse: float = 0.0
    w_users: float = 0.25  # each item's users ranked above other users (seeding); 0 lets the audience ranking drift
    w_items: float = 1.0
    logit_scale: float = 10.0
    max_users: int = 8192  # users per batch in the ranking terms (all when fewer)
    eval_k: int = 20
    audience_k: int = 50
    select_on: tuple[str, ...] = ()  # validation metrics summed for early stopping; () = recall@eval_k + audience
    seed: int = 0
    num_threads: int = 0  # 0: leave torch's default
    max_seconds: float = 3600.0  # a guard only: training stops on max_epochs/patience; when it fires it is reported
    skip: bool = True
    ridge_init_alphas: tuple[float, ...] = (1.0, 10.0, 100.0)  # start the linear path at ridge; () = off
    linear_lr_scale: float = 0.0  # lr multiplier of the ridge-initialised linear path (0 = frozen)
    kernel_landmarks: int = 2000  # Nystrom kernel-ridge start over this many warm items (0 = off; see cb2cf.kernel)
    kernel_grid: tuple[tuple[float, float], ...] = ((1.0, 1.0), (1.0, 0.3), (2.0, 1.0), (2.0, 0.3))  # (gamma, lam)
    kernel_betas: tuple[float, ...] = (0.0, 0.5, 1.0)  # weight of the ridge projection in the kernel input (0 = off)
    min_val_items: int = 30  # fewer validation items (or users below) cannot select a model: not fit to deploy
    min_val_users: int = 10  # users with >= 1 validation interaction


@dataclass
class ItemSet:
    """Items with their content and (optionally) their interactions.

    Attributes:
        item_ids: (n,) ids.
        features: View name -> (n, dim).
        masks: View name -> (n,) bool presence.
        interactions: (n_users_of_space, n) sparse matrix of the items' users, in the
            space's user order (needed for the ranking terms and for validation).
    """

    item_ids: np.ndarray
    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    interactions: sp.spmatrix | None = None


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _multi_pos_ce(logits: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Mean over rows with positives of -mean_{pos} log_softmax(row)."""
    n = pos.sum(1)
    if not (n > 0).any():
        return logits.sum() * 0.0
    return (-(F.log_softmax(logits, 1) * pos).sum(1)[n > 0] / n[n > 0]).mean()


def _selection_names(cfg: TrainConfig, n_items: int, n_users: int) -> tuple[str, ...]:
    """The validation metrics summed for early stopping.

    The default serves both uses of a predicted vector: ranking new items for a user
    (``recall@eval_k``) and ranking users for a new item (``audience_recall@audience_k``).
    A recall whose cut-off covers every candidate is always 1 and could never pick an
    epoch, so on such a small validation set the NDCG at the same cut-off is used.
    """
    if cfg.select_on:
        return tuple(cfg.select_on)
    items = f"recall@{cfg.eval_k}" if n_items > cfg.eval_k else f"ndcg@{cfg.eval_k}"
    users = f"audience_recall@{cfg.audience_k}" if n_users > cfg.audience_k else f"audience_ndcg@{cfg.audience_k}"
    if n_items <= cfg.eval_k or n_users <= cfg.audience_k:
        logger.warning("small validation set (%d items, %d users): early stopping on %s + %s",
                       n_items, n_users, items, users)
    return items, users


def _selection(metrics: dict[str, float], names: tuple[str, ...]) -> float:
    """The early-stopping score: the sum of the validation metrics ``names``."""
    try:
        return float(sum(metrics[m] for m in names))
    except KeyError as exc:
        raise ContentError(f"select_on names unknown metric {exc}; known: {sorted(metrics)}") from None


@dataclass
class _TrainData:
    """The validated training items, their targets and the user vectors, on the training device."""

    dims: dict[str, int]  # view name -> feature dim
    feats: dict[str, np.ndarray]  # view name -> (n, dim) float32, absent views zero
    masks: dict[str, np.ndarray]  # view name -> (n,) bool presence
    n: int  # training items
    rows: np.ndarray  # (n,) the items' rows in the space
    X: dict[str, torch.Tensor]  # feats as tensors
    M: dict[str, torch.Tensor]  # masks as tensors
    T: torch.Tensor  # (n, cf_dim) target CF vectors
    U: torch.Tensor  # (n_users, cf_dim) user vectors
    t_norm2: torch.Tensor  # mean squared target norm (the MSE scale)
    pos_iu: sp.csr_matrix | None  # (n, n_users) each item's users; None without interactions
    n_users: int


@dataclass
class _Best:
    """The best validation point so far (the checkpoint to keep)."""

    metric: float = float("-inf")  # any first epoch beats it (without validation the score is -loss)
    epoch: int = -1
    state: dict | None = None
    rec: dict = field(default_factory=dict)


def _prepare_data(train: ItemSet, space: CFSpace, views: list[ViewSpec] | None) -> _TrainData:
    """Validate the training items and move features, targets and user vectors to the device.

    Raises:
        ContentError: Specs not matching the features, malformed features, a wrong number
            of ids, items missing from ``space``, or interactions of the wrong shape.
    """
    dims = {k: int(np.asarray(v).shape[-1]) for k, v in train.features.items()}
    if views:
        spec_dims = {v.name: v.dim for v in views}
        if spec_dims != dims:
            raise ContentError(f"view specs {spec_dims} do not match the training features {dims}")
    feats, masks, n = normalize_features(train.features, train.masks, dims)
    if n != len(train.item_ids):
        raise ContentError(f"{len(train.item_ids)} item ids but {n} feature rows")
    missing = [i for i in train.item_ids if str(i) not in space._iidx]
    if missing:
        raise ContentError(f"{len(missing)} training items are not in space {space.ref}, e.g. {missing[:5]}")
    dev = default_device()
    rows = np.array([space.item_index(i) for i in train.item_ids])
    T = torch.from_numpy(space.item_vectors[rows]).to(dev)
    pos_iu = None  # (n_items, n_users) dense bool would be big; keep CSR and densify per batch
    if train.interactions is not None:
        pos_iu = sp.csr_matrix(train.interactions).T.tocsr()
        if pos_iu.shape != (n, len(space.user_ids)):
            raise ContentError(f"train interactions must be (n_users={len(space.user_ids)}, n_items={n}), "
                               f"got {train.interactions.shape}")
    return _TrainData(dims, feats, masks, n, rows,
                      X={k: torch.from_numpy(v).to(dev) for k, v in feats.items()},
                      M={k: torch.from_numpy(v).to(dev) for k, v in masks.items()},
                      T=T, U=torch.from_numpy(space.user_vectors).to(dev),
                      t_norm2=T.pow(2).sum(1).mean().clamp_min(1e-8), pos_iu=pos_iu, n_users=len(space.user_ids))


def _ridge_init(model: CB2CF, data: _TrainData, alphas: tuple[float, ...], space: CFSpace,
                val: ItemSet | None) -> np.ndarray:
    """Set the linear path to the ridge map (alpha best on validation Recall), fusion output zeroed; returns W."""
    X = np.hstack([data.feats[k] * data.masks[k][:, None] for k in model.views])
    Y = space.item_vectors[data.rows]

    def score(alpha: float, W: np.ndarray) -> float:
        model.set_linear_map(W)
        s = evaluate(model, space.user_vectors, val)["recall@20"] if val is not None and len(alphas) > 1 else 0.0
        logger.debug("ridge init alpha=%g val recall@20=%.4f", alpha, s)
        return s

    W, _, _ = select_ridge_alpha(X, Y, alphas, score)
    model.set_linear_map(W)
    return W


def _build_model(cfg: TrainConfig, data: _TrainData, space: CFSpace, val: ItemSet | None) -> tuple[CB2CF, dict]:
    """A fresh model on the device, started at ridge or (when it wins on validation: ridge is the floor) the kernel map.

    Returns:
        The model and its start for the manifest (``{"kind": "ridge"|"kernel"|"none"}``, the kernel's gamma, lam, beta, score).
    """
    start = cfg.skip and bool(cfg.ridge_init_alphas)
    m = min(cfg.kernel_landmarks, data.n) if start and cfg.kernel_grid else 0
    model = CB2CF(data.dims, space.dim, cfg.tower_dim, cfg.hidden_dim, cfg.dropout, cfg.input_dropout,
                  cfg.view_dropout, cfg.skip, m, val is not None and any(b != 0 for b in cfg.kernel_betas)).to(default_device())
    if not start:
        return model, {"kind": "none"}
    W = _ridge_init(model, data, cfg.ridge_init_alphas, space, val)
    if not m:
        return model, {"kind": "ridge"}
    sel = _selection_names(cfg, len(val.item_ids), data.n_users) if val is not None else ()
    score = (lambda: _selection(evaluate(model, space.user_vectors, val, cfg.eval_k, cfg.audience_k), sel)) if sel else None
    chosen = kernel_start(model, W, data.X, data.M, space.item_vectors[data.rows], cfg.kernel_grid, cfg.seed,
                          score, cfg.kernel_betas if model.kernel_projection else (0.0,))
    return model, ({"kind": "kernel"} | chosen._asdict() if chosen else {"kind": "ridge"})


def _optimizer(model: CB2CF, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; the linear path gets its own lr (``linear_lr_scale``) and no weight decay, or is frozen."""
    lin = [p for n_, p in model.named_parameters() if n_.startswith("linear.")]
    rest = [p for n_, p in model.named_parameters() if not n_.startswith("linear.")]
    lin_lr = cfg.lr * (cfg.linear_lr_scale if cfg.ridge_init_alphas else 1.0)
    groups = [{"params": rest}] + ([{"params": lin, "lr": lin_lr, "weight_decay": 0.0}] if lin and lin_lr > 0 else [])
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _ranking_loss(loss: torch.Tensor, P: torch.Tensor, idx: np.ndarray, data: _TrainData, cfg: TrainConfig,
                  gen: np.random.Generator) -> torch.Tensor:
    """``loss`` plus the two softmax ranking terms of a batch (items ``idx``, predictions ``P``)."""
    sub = data.pos_iu[idx]
    if data.n_users <= cfg.max_users:
        users = np.arange(data.n_users)
    else:  # the batch's positive users plus random negatives
        users = np.unique(np.concatenate([sub.indices, gen.integers(0, data.n_users, cfg.max_users // 2)]))
        sub = sub[:, users]
    pos = torch.from_numpy(sub.toarray() > 0).to(P.device).float()
    logits = cfg.logit_scale * (P @ data.U[torch.from_numpy(users).to(P.device)].T)
    if cfg.w_users > 0:
        loss = loss + cfg.w_users * _multi_pos_ce(logits, pos)
    if cfg.w_items > 0:
        loss = loss + cfg.w_items * _multi_pos_ce(logits.T, pos.T)
    return loss


def _batch_loss(model: CB2CF, idx: np.ndarray, data: _TrainData, cfg: TrainConfig,
                gen: np.random.Generator) -> torch.Tensor:
    """The training loss of the items ``idx`` (see the module docstring)."""
    ti = torch.from_numpy(idx).to(data.T.device)
    P = model({k: v[ti] for k, v in data.X.items()}, {k: v[ti] for k, v in data.M.items()})
    Tb = data.T[ti]
    loss = cfg.w_cos * (1 - F.cosine_similarity(P, Tb, dim=1)).mean()
    loss = loss + cfg.w_mse * (P - Tb).pow(2).sum(1).mean() / data.t_norm2
    if data.pos_iu is not None and (cfg.w_users > 0 or cfg.w_items > 0):
        loss = _ranking_loss(loss, P, idx, data, cfg, gen)
    return loss


def _train_epoch(model: CB2CF, opt: torch.optim.Optimizer, data: _TrainData, cfg: TrainConfig,
                 gen: np.random.Generator) -> float:
    """One pass over the training items in a random order; returns the mean batch loss."""
    model.train()
    perm = gen.permutation(data.n)
    losses = []
    for s in range(0, data.n, cfg.batch_size):
        loss = _batch_loss(model, perm[s:s + cfg.batch_size], data, cfg, gen)
        if not torch.isfinite(loss):
            raise TrainingError(f"CB2CF: loss is {float(loss.detach())} (diverged); lower lr or check the features")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def _starting_point(model: CB2CF, cfg: TrainConfig, space: CFSpace, val: ItemSet | None,
                    select: tuple[str, ...] | None) -> tuple[_Best, list[dict]]:
    """The best-so-far before training and the history; with validation the start competes too.

    Raises:
        ContentError: ``select_on`` names an unknown metric.
    """
    if val is None:
        return _Best(), []
    rec = evaluate(model, space.user_vectors, val, cfg.eval_k, cfg.audience_k)
    return _Best(_selection(rec, select), -1, copy.deepcopy(model.state_dict()), rec), [{"epoch": -1} | rec]


def _validate(model: CB2CF, cfg: TrainConfig, space: CFSpace, val: ItemSet | None,
              select: tuple[str, ...] | None, rec: dict) -> float:
    """Add the validation metrics to the epoch record ``rec``; the early-stopping score (-loss without ``val``).

    Raises:
        ContentError: ``select_on`` names an unknown metric.
    """
    if val is None:
        return -rec["loss"]
    rec.update(evaluate(model, space.user_vectors, val, cfg.eval_k, cfg.audience_k))
    return _selection(rec, select)


def _finalize(model: CB2CF, cfg: TrainConfig, best: _Best, train: ItemSet, space: CFSpace, data: _TrainData,
              views: list[ViewSpec] | None, select: tuple[str, ...] | None, t0: float) -> None:
    """Load the best checkpoint into ``model`` (eval mode) and fill its manifest and version."""
    checkpoint = dict(model=best.state or model.state_dict(), config=asdict(cfg), epoch=best.epoch, best_metric=best.metric)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    ext = {v.name: v.extractor_id for v in views or []}
    model.manifest = {
        "name": cfg.name,
        "cf_space": {"id": space.space_id, "version": space.version, "dim": space.dim},
        "views": [{"name": k, "dim": d, "extractor_id": ext.get(k, "unknown")} for k, d in data.dims.items()],
        "training_data": {"fingerprint": fingerprint_features(train.features, train.masks, train.item_ids),
                          "n_items": int(data.n),
                          "n_interactions": int(train.interactions.nnz) if train.interactions is not None else 0},
        "train_config": checkpoint["config"],
        "metrics": {"best_epoch": best.epoch, "train_seconds": round(time.time() - t0, 2),
                    "selected_on": list(select) if select is not None else None}
        | {f"val_{k}": v for k, v in best.rec.items() if k not in ("epoch", "loss", "users")},
        "libraries": library_versions(),
    }
    model.manifest["version"] = f"{cfg.name}@{model.weights_hash()[:12]}"


def train_cb2cf(train: ItemSet, space: CFSpace, config: TrainConfig | None = None, val: ItemSet | None = None,
                views: list[ViewSpec] | None = None, show_progress: bool = False) -> tuple[CB2CF, dict]:
    """Train a CB2CF model on warm items (content -> their CF vectors in ``space``).

    Args:
        train: Warm items; every id must be in ``space``. ``interactions`` enables the
            ranking terms.
        space: The CF space (targets and user vectors).
        config: Hyper-parameters.
        val: Cold validation items with interactions: early stopping on Recall@k.
        views: Extractor ids per view for the manifest (dims are checked).
        show_progress: tqdm over epochs.

    Returns:
        The best model (eval mode, manifest filled) and the history dict.

    Raises:
        ContentError: Malformed features, unknown items, interactions of the wrong shape,
            or ``select_on`` naming an unknown metric.
        TrainingError: The loss became NaN or infinite.
    """
    cfg = config or TrainConfig()
    t0 = time.time()
    _seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    data = _prepare_data(train, space, views)
    model, start = _build_model(cfg, data, space, val)
    opt = _optimizer(model, cfg)
    gen = np.random.default_rng(cfg.seed)
    select = _selection_names(cfg, len(val.item_ids), data.n_users) if val is not None else None
    best, history = _starting_point(model, cfg, space, val, select)
    stopped_by = "max_epochs"
    for epoch in tqdm(range(cfg.max_epochs), desc="cb2cf", disable=not show_progress):
        rec = {"epoch": epoch, "loss": _train_epoch(model, opt, data, cfg, gen)}
        metric = _validate(model, cfg, space, val, select, rec)
        history.append(rec)
        logger.debug("epoch %d %s", epoch, rec)
        if metric > best.metric:
            best = _Best(metric, epoch, copy.deepcopy(model.state_dict()), rec)
        if epoch - best.epoch >= cfg.patience:
            stopped_by = "patience"
            break
        if time.time() - t0 > cfg.max_seconds:
            stopped_by = "time cap"
            logger.warning("CB2CF: the %.0fs time cap fired at epoch %d: the result depends on machine speed",
                           cfg.max_seconds, epoch)
            break
    _finalize(model, cfg, best, train, space, data, views, select, t0)
    model.manifest["metrics"]["stopped_by"] = stopped_by
    model.manifest["metrics"]["start"] = start
    problems = validation_problems(val, cfg.min_val_items, cfg.min_val_users)
    model.manifest["fit_to_deploy"] = not problems
    if problems:
        model.manifest["not_fit_to_deploy_because"] = problems
        logger.warning("%s is NOT fit to deploy: %s", model.version, "; ".join(problems))
    logger.info("trained %s in %.1fs, best epoch %d (%s)", model.version, time.time() - t0, best.epoch, best.metric)
    return model, {"history": history, "best_epoch": best.epoch, "seconds": time.time() - t0, "stopped_by": stopped_by}
