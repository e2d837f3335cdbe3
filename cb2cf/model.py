"""The CB2CF model: content views -> a vector in the CF space.

One small tower per view, a fusion MLP over the concatenated tower outputs, output in
the CF dimension. A missing view is replaced by a learned per-view "missing" embedding
(never by a zero that looks like data); during training, views are dropped at random
(``view_dropout``) so items without audio or caption still get good vectors.

Files (like sentence-transformers' ``models/Dense.py``): ``config.json`` (the
``config_keys``), ``model.safetensors`` (weights) and ``manifest.json`` (CF space
id/version, views with extractor ids and dims, training-data fingerprint, metrics,
library versions, weights hash).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from cb2cf.errors import FeatureMismatchError, ModelFileError
from cb2cf.features import Features, Masks, ViewSpec, normalize_features
from cb2cf.kernel import KernelPath, masked_concat

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MANIFEST_NAME = "manifest.json"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's numbers."""
    import implicit
    import safetensors

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "implicit": implicit.__version__,
            "safetensors": safetensors.__version__}


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class CB2CF(nn.Module):
    """Multiview regressor from content views to the CF embedding space.

    Args:
        views: View name -> input dim (order is kept).
        cf_dim: Output dimension (the CF space's dim).
        tower_dim: Width of each view tower's output.
        hidden_dim: Width of the fusion MLP.
        dropout: Dropout inside towers and fusion.
        input_dropout: Dropout on the raw view features.
        view_dropout: Probability of dropping a present view per item while training.
        skip: Add a linear path from the concatenated (masked) views to the output, so
            the model contains a ridge-style linear map (training can start from one).
        kernel_landmarks: With ``m > 0``, add a Nyström kernel-ridge path over ``m``
            landmark items (:class:`cb2cf.kernel.KernelPath`, fitted in closed form by
            training, never by gradient).
        kernel_projection: The kernel path also sees the ridge map's projection of the
            content (``KernelPath(projection=True)``; its weight is picked in training).
    """

    config_keys = ["views", "cf_dim", "tower_dim", "hidden_dim", "dropout", "input_dropout", "view_dropout", "skip",
                   "kernel_landmarks", "kernel_projection"]
    # keys that models saved before they existed may lack, with the value such a model had
    optional_config: ClassVar[dict[str, int | bool]] = {"kernel_landmarks": 0, "kernel_projection": False}

    def __init__(self, views: Mapping[str, int], cf_dim: int, tower_dim: int = 256, hidden_dim: int = 512,
                 dropout: float = 0.1, input_dropout: float = 0.1, view_dropout: float = 0.25,
                 skip: bool = True, kernel_landmarks: int = 0, kernel_projection: bool = False) -> None:
        super().__init__()
        if not views:
            raise FeatureMismatchError("a CB2CF model needs at least one view")
        self.views = {str(k): int(v) for k, v in views.items()}
        self.cf_dim, self.tower_dim, self.hidden_dim = int(cf_dim), int(tower_dim), int(hidden_dim)
        self.dropout, self.input_dropout, self.view_dropout = float(dropout), float(input_dropout), float(view_dropout)
        self.towers = nn.ModuleDict({
            name: nn.Sequential(nn.Dropout(input_dropout), nn.Linear(dim, tower_dim), nn.GELU(),
                                nn.Dropout(dropout), nn.Linear(tower_dim, tower_dim))
            for name, dim in self.views.items()})
        self.missing = nn.ParameterDict({name: nn.Parameter(torch.zeros(tower_dim)) for name in self.views})
        n = len(self.views)
        self.fusion = nn.Sequential(nn.LayerNorm(n * tower_dim), nn.Linear(n * tower_dim, hidden_dim), nn.GELU(),
                                    nn.Dropout(dropout), nn.Linear(hidden_dim, cf_dim))
        self.skip = bool(skip)
        self.linear = nn.Linear(sum(self.views.values()), cf_dim) if self.skip else None
        self.kernel_landmarks = int(kernel_landmarks)
        self.kernel_projection = bool(kernel_projection) and self.kernel_landmarks > 0
        self.kernel = (KernelPath(self.views, self.cf_dim, self.kernel_landmarks, self.kernel_projection)
                       if self.kernel_landmarks else None)
        self.manifest: dict[str, Any] = {}

    # ------------------------------------------------------------------ forward
    def forward(self, x: Mapping[str, torch.Tensor], m: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Map a batch of views (name -> (B, dim)) and masks (name -> (B,) bool) to (B, cf_dim)."""
        masks = {k: m[k] for k in self.views}
        if self.training and self.view_dropout > 0 and len(self.views) > 1:
            present = torch.stack([masks[k] for k in self.views], 1)
            drop = torch.rand(present.shape, device=present.device) < self.view_dropout
            kept = present & ~drop
            none_left = ~kept.any(1)  # never drop every view of an item
            kept[none_left] = present[none_left]
            masks = {k: kept[:, j] for j, k in enumerate(self.views)}
        outs = []
        for name, tower in self.towers.items():
            h = tower(x[name])
            outs.append(torch.where(masks[name][:, None], h, self.missing[name].expand_as(h)))
        out = self.fusion(torch.cat(outs, 1))
        if self.linear is not None:
            out = out + self.linear(masked_concat(x, masks, self.views))
        if self.kernel is not None:
            out = out + self.kernel(x, m)
        return out

    @torch.no_grad()
    def set_linear_map(self, W: np.ndarray) -> None:
        """Start from a linear map: ``W`` (intercept row last, e.g. ridge) into the linear path, fusion output zeroed.

        Raises:
            ValueError: The model has no linear path (``skip=False``).
        """
        if self.linear is None:
            raise ValueError("set_linear_map needs a model with a linear path (skip=True)")
        self.linear.weight.copy_(torch.from_numpy(W[:-1].T.astype(np.float32)))
        self.linear.bias.copy_(torch.from_numpy(W[-1].astype(np.float32)))
        self.fusion[-1].weight.zero_()
        self.fusion[-1].bias.zero_()

    # ------------------------------------------------------------------ inference
    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return next(self.parameters()).device

    @property
    def version(self) -> str:
        """``"<name>@<weights hash>"``: what the catalog stores as ``cf_model_version``."""
        return self.manifest.get("version") or f"cb2cf@{self.weights_hash()[:12]}"

    @property
    def view_specs(self) -> list[ViewSpec]:
        """Views with their extractor ids (from the manifest)."""
        ext = {v["name"]: v.get("extractor_id", "unknown") for v in self.manifest.get("views", [])}
        return [ViewSpec(n, d, ext.get(n, "unknown")) for n, d in self.views.items()]

    def to_tensors(self, features: Features, masks: Masks | None = None, ids: Sequence[Any] | None = None,
                   allow_empty_rows: bool = False,
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int]:
        """Validate features and turn them into tensors on the model's device.

        Raises:
            FeatureMismatchError: Unknown view or wrong dim.
            ContentError: Inconsistent rows, NaNs in present rows, bad masks (naming ``ids``).
        """
        f, mk, n = normalize_features(features, masks, self.views, ids, allow_empty_rows)
        dev = self.device
        return ({k: torch.from_numpy(v).to(dev) for k, v in f.items()},
                {k: torch.from_numpy(v).to(dev) for k, v in mk.items()}, n)

    @torch.no_grad()
    def _forward_batched(self, x: dict[str, torch.Tensor], m: dict[str, torch.Tensor], n: int,
                         batch_size: int) -> np.ndarray:
        was_training = self.training
        self.eval()
        out = [self(
            {k: v[s:s + batch_size] for k, v in x.items()}, {k: v[s:s + batch_size] for k, v in m.items()}
        ).float().cpu().numpy() for s in range(0, n, batch_size)]
        self.train(was_training)
        return np.concatenate(out, 0) if out else np.zeros((0, self.cf_dim), np.float32)

    def predict(self, features: Features, masks: Masks | None = None, batch_size: int = 4096,
                ids: Sequence[Any] | None = None) -> np.ndarray:
        """Predict CF vectors for one item or a batch.

        Args:
            features: View name -> (n, dim) or (dim,) array. A view left out is missing
                for every item.
            masks: View name -> (n,) bool, False where the item lacks that view.
            batch_size: Rows per forward pass.
            ids: Optional item ids, named in error messages.

        Returns:
            (n, cf_dim) float32 array (n = 1 for a single item).

        Raises:
            FeatureMismatchError: Unknown view or wrong dim.
            ContentError: Inconsistent rows, NaNs in present rows, bad masks, an item with
                no view present (see :meth:`try_predict` to place the others anyway).
        """
        x, m, n = self.to_tensors(features, masks, ids)
        return self._forward_batched(x, m, n, batch_size)

    def try_predict(self, features: Features, masks: Masks | None = None, ids: Sequence[Any] | None = None,
                    batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`predict`, but items with none of the model's views are not an error.

        Returns:
            ``(vectors, placed)``: (n, cf_dim) float32 with NaN rows where ``placed`` (n,)
            is False (the item has no view this model reads).

        Raises:
            FeatureMismatchError, ContentError: As :meth:`predict`, for everything else.
        """
        x, m, n = self.to_tensors(features, masks, ids, allow_empty_rows=True)
        placed = torch.stack(list(m.values())).any(0).cpu().numpy() if n else np.zeros(0, bool)
        out = np.full((n, self.cf_dim), np.nan, np.float32)
        rows = np.flatnonzero(placed)
        if len(rows):
            r = torch.from_numpy(rows).to(self.device)
            out[rows] = self._forward_batched({k: v[r] for k, v in x.items()}, {k: v[r] for k, v in m.items()},
                                              len(rows), batch_size)
        return out, placed

    # ------------------------------------------------------------------ files
    def get_config_dict(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {key: getattr(self, key) for key in self.config_keys}

    def weights_hash(self) -> str:
        """SHA-256 over the state dict (names, shapes, bytes)."""
        h = hashlib.sha256()
        for k, v in sorted(self.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def save(self, output_path: str | Path, safe_serialization: bool = True) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``manifest.json`` into a directory.

        Raises:
            ValueError: ``safe_serialization=False`` (pickle is never written).
        """
        if not safe_serialization:
            raise ValueError("CB2CF only saves safetensors")
        from safetensors.torch import save_file

        path = Path(output_path)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_NAME).write_text(json.dumps(self.get_config_dict(), indent=2))
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path / WEIGHTS_NAME))
        manifest = dict(self.manifest)
        manifest["weights_sha256"] = self.weights_hash()
        manifest.setdefault("version", f"{manifest.get('name', 'cb2cf')}@{manifest['weights_sha256'][:12]}")
        manifest["libraries"] = library_versions()
        self.manifest = manifest
        (path / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
        return path

    @classmethod
    def load(cls, input_path: str | Path, expected_views: Mapping[str, int | ViewSpec] | None = None,
             device: str | torch.device | None = None) -> CB2CF:
        """Load a model saved by :meth:`save`.

        Args:
            input_path: The model directory.
            expected_views: The views the caller will feed, name -> dim or
                :class:`ViewSpec` (then the extractor id is checked too). Any difference
                from the manifest is refused.
            device: Where to put the model; default CUDA when present, else CPU.

        Returns:
            The model in eval mode.

        Raises:
            ModelFileError: Files missing, truncated, not JSON/safetensors, or weights
                not matching the manifest's hash.
            FeatureMismatchError: ``expected_views`` differs from the manifest's views.
        """
        from safetensors.torch import load_file

        path = Path(input_path)
        for name in (CONFIG_NAME, WEIGHTS_NAME, MANIFEST_NAME):
            if not (path / name).is_file():
                raise ModelFileError(f"{path}: missing {name}")
        try:
            config = json.loads((path / CONFIG_NAME).read_text())
            manifest = json.loads((path / MANIFEST_NAME).read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{path}: config/manifest is not valid JSON: {exc}") from exc
        if not isinstance(config, dict) or not isinstance(manifest, dict):
            raise ModelFileError(f"{path}: config.json and manifest.json must each hold a JSON object")
        try:
            state = load_file(str(path / WEIGHTS_NAME))
        except Exception as exc:  # SafetensorError, OSError: truncated or not safetensors
            raise ModelFileError(f"{path / WEIGHTS_NAME}: not a readable safetensors file: {exc}") from exc
        try:
            model = cls(**({k: config[k] for k in cls.config_keys if k not in cls.optional_config}
                           | {k: config.get(k, v) for k, v in cls.optional_config.items()}))
            model.load_state_dict(state, strict=True)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ModelFileError(f"{path}: weights do not fit config.json: {exc}") from exc
        model.manifest = manifest
        if manifest.get("weights_sha256") and manifest["weights_sha256"] != model.weights_hash():
            raise ModelFileError(f"{path}: weights hash does not match manifest.json")
        listed = manifest.get("views")
        if listed is not None:  # the manifest must describe the views the weights were built for
            try:
                listed = {v["name"]: int(v["dim"]) for v in listed}
            except (TypeError, KeyError, ValueError) as exc:
                raise ModelFileError(f"{path}: manifest.json 'views' is malformed: {exc!r}") from exc
            if listed != model.views:
                raise ModelFileError(f"{path}: manifest.json lists views {listed} but the weights are for {model.views}")
        if expected_views is not None:
            check_views(model, expected_views, source=str(path))
        model.to(torch.device(device) if device else default_device())
        return model.eval()


def check_views(model: CB2CF, expected: Mapping[str, int | ViewSpec], source: str = "model") -> None:
    """Refuse a model whose views (names, dims, extractor ids) differ from ``expected``.

    Raises:
        FeatureMismatchError: With every difference listed.
    """
    specs = {s.name: s for s in model.view_specs}
    problems = []
    for name in sorted(set(expected) | set(specs)):
        if name not in specs:
            problems.append(f"view {name!r} is not in the model")
            continue
        if name not in expected:
            problems.append(f"model view {name!r} ({specs[name].dim}-d) is not provided")
            continue
        exp = expected[name]
        dim = exp.dim if isinstance(exp, ViewSpec) else int(exp)
        if dim != specs[name].dim:
            problems.append(f"view {name!r}: model dim {specs[name].dim}, features dim {dim}")
        if isinstance(exp, ViewSpec) and exp.extractor_id != specs[name].extractor_id:
            problems.append(f"view {name!r}: model extractor {specs[name].extractor_id!r}, "
                            f"features extractor {exp.extractor_id!r}")
    if problems:
        raise FeatureMismatchError(f"{source}: manifest does not match the features: " + "; ".join(problems))
