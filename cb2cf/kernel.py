"""Nyström kernel ridge from content views to CF vectors: CB2CF's nonlinear starting point.

The map is ``f(x) = k(z(x), L) @ A + mean`` where ``z(x)`` concatenates the views, each
block L2-normalised and zeroed where the view is missing; ``L`` are ``m`` landmark warm
items (a seeded random subset, all of them when fewer); the kernel is
``k(z, z') = exp(gamma * (z . z' / s - 1))`` with ``s`` the median ``||z||^2`` of the
warm items (so ``gamma`` does not depend on how many views are present); ``A`` solves
the Nyström ridge problem ``min ||K_nm A - (Y - mean)||^2 + lam * tr(A^T K_mm A)``.

With ``projection=True`` the kernel also sees where the linear ridge map puts the item:
``z(x)`` is extended by ``beta * r * (W x - mu) / t`` (``W`` the ridge map, ``mu`` its mean
over the warm items, ``t`` the median length of ``W x - mu`` and ``r`` the median length of
the content part, so ``beta = 1`` gives both parts the same weight). The kernel then
measures similarity partly in the directions that predict CF vectors, not only in the raw
text-embedding geometry; ``beta = 0`` is the plain kernel. ``beta`` is picked on
validation with ``(gamma, lam)``.

Why: on the multi-seed, two-dataset protocol of the benchmark (ml-latest-small with and
without the tag view) this closed form beat the linear ridge map on cold validation
Recall@20 on every seed (see docs/cb2cf.md), where a ranking-trained MLP on top of ridge
did not. :func:`cb2cf.train.train_cb2cf` fits a small grid of ``(gamma, lam)`` and keeps
it only when it beats the ridge start on validation (ridge stays the floor).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

#: Rows of ``K_nm`` computed at a time while fitting.
FIT_CHUNK = 8192


class Startable(Protocol):
    """A model with a linear path and a kernel path (e.g. :class:`cb2cf.model.CB2CF`)."""

    views: dict[str, int]
    kernel: KernelPath | None
    kernel_landmarks: int
    kernel_projection: bool

    def set_linear_map(self, W: np.ndarray) -> None: ...


def masked_concat(x: Mapping[str, torch.Tensor], m: Mapping[str, torch.Tensor], views: Mapping[str, int]
                  ) -> torch.Tensor:
    """The views of ``views`` concatenated in order, zeroed where missing (the linear path's and ridge's input)."""
    return torch.cat([x[k] * m[k][:, None].to(x[k].dtype) for k in views], 1)


def block_inputs(x: Mapping[str, torch.Tensor], m: Mapping[str, torch.Tensor], views: Mapping[str, int]
                 ) -> torch.Tensor:
    """The views of ``views`` concatenated in order, each L2-normalised and zeroed where missing."""
    blocks = []
    for k in views:
        b = x[k] * m[k][:, None].to(x[k].dtype)
        blocks.append(b / b.norm(dim=1, keepdim=True).clamp_min(1e-8))
    return torch.cat(blocks, 1)


class KernelPath(nn.Module):
    """The fitted kernel map (all buffers: saved with the model, never trained by gradient).

    Until :meth:`fit` is called its output is zero.

    Args:
        views: View name -> input dim (the model's views, in order).
        cf_dim: Output dimension.
        n_landmarks: Number of landmark rows ``m``.
        projection: Extend the input by the weighted ridge projection (:meth:`set_projection`).
    """

    def __init__(self, views: Mapping[str, int], cf_dim: int, n_landmarks: int, projection: bool = False) -> None:
        super().__init__()
        self.views = dict(views)
        self.projection = bool(projection)
        d = sum(self.views.values())
        self.register_buffer("landmarks", torch.zeros(n_landmarks, d + (cf_dim if projection else 0)))
        self.register_buffer("coef", torch.zeros(n_landmarks, cf_dim))
        self.register_buffer("mean", torch.zeros(cf_dim))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("gamma", torch.ones(()))
        if projection:  # the ridge map W x + b, its warm mean and the weight of the projected part
            self.register_buffer("proj_w", torch.zeros(d, cf_dim))
            self.register_buffer("proj_b", torch.zeros(cf_dim))
            self.register_buffer("proj_mean", torch.zeros(cf_dim))
            self.register_buffer("proj_weight", torch.zeros(()))

    def inputs(self, x: Mapping[str, torch.Tensor], m: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The kernel's input ``z(x)``: the normalised view blocks, plus the weighted ridge projection.

        Args:
            x: View name -> (n, dim) features, on the path's device.
            m: View name -> (n,) presence masks.
        """
        z = block_inputs(x, m, self.views)
        if not self.projection:
            return z
        p = masked_concat(x, m, self.views) @ self.proj_w + self.proj_b
        return torch.cat([z, self.proj_weight * (p - self.proj_mean)], 1)

    @torch.no_grad()
    def set_projection(self, W: np.ndarray, x: Mapping[str, torch.Tensor], m: Mapping[str, torch.Tensor],
                       beta: float) -> None:
        """Use the ridge map ``W`` (intercept row last) with weight ``beta``, scaled on the items of ``x``.

        Args:
            W: (sum of view dims + 1, cf_dim) ridge map on the masked, concatenated views.
            x: The training items' views (view name -> (n, dim)), on the path's device.
            m: Their presence masks.
            beta: Weight of the projected part relative to the content part (0 switches it off).

        Raises:
            ValueError: The path was built without ``projection``.
        """
        if not self.projection:
            raise ValueError("set_projection needs a KernelPath built with projection=True")
        self.proj_w.copy_(torch.from_numpy(W[:-1].astype(np.float32)))
        self.proj_b.copy_(torch.from_numpy(W[-1].astype(np.float32)))
        p = masked_concat(x, m, self.views) @ self.proj_w + self.proj_b
        self.proj_mean.copy_(p.mean(0))
        t = torch.median((p - self.proj_mean).norm(dim=1)).clamp_min(1e-8)
        r = torch.median(block_inputs(x, m, self.views).norm(dim=1)).clamp_min(1e-8)
        self.proj_weight.fill_(float(beta * r / t))

    def kernel(self, z: torch.Tensor) -> torch.Tensor:
        """``k(z, L)``: (n, m)."""
        return torch.exp(self.gamma * (z @ self.landmarks.T / self.scale - 1.0))

    def forward(self, x: Mapping[str, torch.Tensor], m: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Map views and masks to (B, cf_dim)."""
        return self.kernel(self.inputs(x, m)) @ self.coef + self.mean

    @torch.no_grad()
    def fit(self, z: torch.Tensor, y: np.ndarray, landmark_rows: np.ndarray, gamma: float, lam: float) -> None:
        """Solve the Nyström kernel ridge of ``y`` (n, cf_dim) on inputs ``z`` (n, d) (see the module docstring).

        Raises:
            numpy.linalg.LinAlgError: The regularised system is singular.
        """
        zl = z[torch.as_tensor(landmark_rows, device=z.device)]
        self.landmarks.copy_(zl)
        self.scale.fill_(float(torch.median((z * z).sum(1)).clamp_min(1e-8)))
        self.gamma.fill_(float(gamma))
        kmm = self.kernel(zl).double().cpu().numpy()
        mean = y.mean(0)
        ktk = np.zeros((len(zl), len(zl)))
        kty = np.zeros((len(zl), y.shape[1]))
        for i in range(0, len(z), FIT_CHUNK):  # K_nm is never held whole: memory O(chunk * m), any catalog size
            knm = self.kernel(z[i:i + FIT_CHUNK]).double().cpu().numpy()
            ktk += knm.T @ knm
            kty += knm.T @ (y[i:i + FIT_CHUNK] - mean).astype(np.float64)
        coef = np.linalg.solve(ktk + lam * kmm + 1e-6 * np.eye(len(zl)), kty)
        self.coef.copy_(torch.from_numpy(coef.astype(np.float32)))
        self.mean.copy_(torch.from_numpy(mean.astype(np.float32)))

    @torch.no_grad()
    def clear(self) -> None:
        """Switch the path off (output zero)."""
        self.coef.zero_()
        self.mean.zero_()


def landmark_rows(n: int, n_landmarks: int, seed: int) -> np.ndarray:
    """``n_landmarks`` sorted row indices out of ``n`` (seeded), or every row when ``n`` is smaller."""
    if n <= n_landmarks:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 7]).choice(n, n_landmarks, replace=False))


class KernelChoice(NamedTuple):
    """The kept kernel fit: its hyper-parameters and validation score."""

    gamma: float
    lam: float
    beta: float
    score: float | None  # None: no validation, the first entry was kept unscored


def select_kernel(path: KernelPath, inputs: Callable[[float], torch.Tensor], y: np.ndarray, rows: np.ndarray,
                  grid: tuple[tuple[float, float], ...], betas: tuple[float, ...], score: Callable[[], float],
                  floor: float) -> KernelChoice | None:
    """Fit ``path`` for each ``beta`` x ``(gamma, lam)`` and keep the best fit if it scores above ``floor``.

    Args:
        path: The kernel path to fit (its model is what ``score`` evaluates).
        inputs: ``beta`` -> (n, d) kernel inputs of the training items (:meth:`KernelPath.inputs`
            with the projection weighted by ``beta``).
        y: (n, cf_dim) their CF vectors.
        rows: Landmark rows (:func:`landmark_rows`).
        grid: Candidate ``(gamma, lam)`` pairs.
        betas: Candidate projection weights (``(0.0,)`` without a projection).
        score: Higher is better, e.g. validation Recall of the model with the path as fitted.
        floor: The score to beat (e.g. the ridge start's).

    Returns:
        The kept fit (the path is left fitted with it; ties go to the earlier entry), or
        None when no fit beat ``floor`` (the path is cleared).

    Raises:
        numpy.linalg.LinAlgError: A regularised system is singular.
    """
    best: KernelChoice | None = None
    for beta in betas:
        z = inputs(beta)
        for gamma, lam in grid:
            path.fit(z, y, rows, gamma, lam)
            s = score()
            logger.debug("kernel beta=%g gamma=%g lam=%g score=%.4f (floor %.4f)", beta, gamma, lam, s, floor)
            if s > (best.score if best else floor):
                best = KernelChoice(gamma, lam, beta, s)
    if best is None:
        path.clear()
        return None
    path.fit(inputs(best.beta), y, rows, best.gamma, best.lam)
    return best


def kernel_start(model: Startable, W: np.ndarray, x: Mapping[str, torch.Tensor], m: Mapping[str, torch.Tensor],
                 y: np.ndarray, grid: tuple[tuple[float, float], ...], seed: int,
                 score: Callable[[], float] | None, betas: tuple[float, ...] = (0.0,)) -> KernelChoice | None:
    """Start ``model`` at the kernel ridge map instead of its ridge map ``W`` when that scores higher.

    ``model`` carries a :class:`KernelPath` and its linear path holds ``W``. Each grid
    entry (each ``beta`` with each ``(gamma, lam)``) is scored by ``score`` (the model's
    validation score, e.g. early stopping's); the ridge start's score is the floor: when
    no entry beats it the linear path gets ``W`` back and the kernel path is removed.
    Without ``score`` (no validation) the first entry (the first ``beta`` with the first
    ``(gamma, lam)``) is fitted once and kept, with score None.

    Args:
        model: The model to start; fitted on the items of ``x``/``m`` (view -> (n, dim) / (n,)).
        W: Its ridge map (intercept row last); also the kernel's projection.
        x: The training items' views.
        m: Their masks.
        y: (n, cf_dim) their CF vectors.
        grid: ``(gamma, lam)`` pairs.
        seed: Seeds the landmark choice.
        score: Higher is better, or None.
        betas: Projection weights to try (only ``0.0`` when the path has no projection).

    Returns:
        The kept fit, or None when ridge was kept.

    Raises:
        numpy.linalg.LinAlgError: A regularised system is singular.
        ValueError: The model has no kernel path, or ``betas`` other than 0 for a path
            built without a projection.
    """
    path = model.kernel
    if path is None:
        raise ValueError("kernel_start needs a model with a kernel path (kernel_landmarks > 0)")
    if not path.projection and any(b != 0 for b in betas):
        raise ValueError(f"projection weights {betas} need a kernel path built with projection=True")
    floor = score() if score is not None else float("-inf")
    model.set_linear_map(np.zeros_like(W))

    def inputs(beta: float) -> torch.Tensor:
        if path.projection:
            path.set_projection(W, x, m, beta)
        return path.inputs(x, m)

    rows = landmark_rows(len(next(iter(x.values()))), model.kernel_landmarks, seed)
    if score is None:  # nothing to choose with: fit the first entry once
        path.fit(inputs(betas[0]), y, rows, *grid[0])
        chosen: KernelChoice | None = KernelChoice(grid[0][0], grid[0][1], betas[0], None)
    else:
        chosen = select_kernel(path, inputs, y, rows, grid, betas, score, floor)
    logger.info("start: %s", f"kernel ridge gamma={chosen.gamma:g} lam={chosen.lam:g} beta={chosen.beta:g}"
                if chosen else "ridge")
    if chosen is None:
        model.set_linear_map(W)
        model.kernel, model.kernel_landmarks, model.kernel_projection = None, 0, False
    return chosen
