"""Process runtime: the cache directory, the device, optional imports, library versions, the model cache.

One home for each: every extractor and enricher resolves ``"auto"`` devices with
:func:`pick_device`, loads heavy models once per process through :func:`cached_model`,
imports optional packages with :func:`require` (which says what to install), and
records :func:`library_versions` in what it saves.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Hashable
from importlib import metadata
from pathlib import Path
from typing import Any

from tagging.errors import MissingDependency, ModelLoadError

logger = logging.getLogger(__name__)

_MODELS: dict[Hashable, Any] = {}
_LOCK = threading.RLock()


def cache_dir() -> Path:
    """Directory for derived files (``TAGGING_CACHE_DIR``, default ``~/.cache/tagging``)."""
    root = os.environ.get("TAGGING_CACHE_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "tagging"


DEVICES = ("auto", "cpu", "cuda")
DEVICE_ENV = "TAGGING_DEVICE"


def set_device(device: str) -> None:
    """Make ``device`` what every ``"auto"`` model of this process (and its children) runs on.

    Stored in ``$TAGGING_DEVICE`` so that decode processes and Ray actors started later see it;
    ``"auto"`` clears it. It is a runtime choice, not part of any extractor id.

    Raises:
        ValueError: ``device`` is not one of :data:`DEVICES`.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    if device == "auto":
        os.environ.pop(DEVICE_ENV, None)
    else:
        os.environ[DEVICE_ENV] = device


def _gpu_driver_present() -> bool:
    """True when an NVIDIA (or ROCm) kernel driver is loaded, the precondition of ``torch.cuda``."""
    return any(os.path.exists(p) for p in ("/proc/driver/nvidia", "/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd"))


def pick_device(device: str = "auto", backend: str = "torch") -> str:
    """Resolve ``"auto"`` to ``$TAGGING_DEVICE`` if set, else ``"cuda"`` when ``backend`` sees a GPU, else ``"cpu"``.

    Args:
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (anything but ``"auto"`` is returned as is).
        backend: Which runtime must see the GPU: ``"torch"``, ``"onnxruntime"`` or ``"ctranslate2"``.

    Raises:
        ValueError: Unknown backend.
    """
    if device == "auto":
        device = os.environ.get(DEVICE_ENV, "auto")
    if device != "auto":
        return device
    if backend == "torch":
        if "torch" not in sys.modules and not _gpu_driver_present():
            return "cpu"  # no GPU driver: torch cannot see a GPU, and importing it costs seconds
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if backend == "onnxruntime":
        import onnxruntime

        return "cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "cpu"
    if backend == "ctranslate2":
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    raise ValueError(f"unknown backend {backend!r}")


def require(module: str, install: str) -> Any:
    """Import ``module`` or raise :class:`MissingDependency` telling what to install.

    Raises:
        MissingDependency: The module cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(module, f"not installed; run `pip install {install}`") from exc


def cached_model(key: Hashable, loader: Callable[[], Any]) -> Any:
    """Load a heavy model once per process and return the cached object (thread-safe)."""
    with _LOCK:
        if key not in _MODELS:
            logger.info("loading model %s", key)
            _MODELS[key] = loader()
        return _MODELS[key]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def onnx_session(model_path: str | Path, device: str = "auto", threads: int = 0, arena: bool = True) -> Any:
    """An ONNX Runtime session on ``device`` (CUDA provider when it resolves to ``"cuda"``).

    Args:
        model_path: The ``.onnx`` file.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (resolved with :func:`pick_device` for onnxruntime).
        threads: Intra-op threads (0: ONNX Runtime's default, one per core).
        arena: Keep ONNX Runtime's CPU memory arena (faster repeated runs, memory held between them).

    Raises:
        MissingDependency: onnxruntime is not installed.
    """
    ort = require("onnxruntime", "onnxruntime")
    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = arena
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    # Spinning threads after a run starve whatever runs next in this process (the text model ran
    # 10x slower right after the frame model on 2 cores); sleeping costs nothing measurable here.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    cuda = pick_device(device, "onnxruntime") == "cuda"
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    return ort.InferenceSession(str(model_path), opts, providers=providers)


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of ``names`` (missing ones are left out)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def checksum_ok(path: Path) -> bool:
    """True when ``path`` exists and matches the SHA-256 written next to it (``<file>.sha256``)."""
    check = path.with_name(path.name + ".sha256")
    return path.exists() and check.exists() and check.read_text().strip() == file_sha256(path)


def export_once(path: Path, write: Callable[[Path], None], what: str) -> Path:
    """A model file exported once into the cache: ``path`` when its checksum holds, else ``write(tmp)``.

    The export runs under a file lock (processes wait for each other), into a temporary file that
    is checksummed and renamed into place, so a torn or damaged file is exported again.

    Raises:
        MissingDependency: What the export needs is not installed.
        ModelLoadError: The export failed (nothing is left at ``path``).
    """
    import fcntl

    if checksum_ok(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if checksum_ok(path):  # another process exported it while we waited
            return path
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        logger.info("exporting %s to %s", what, path)
        try:
            write(tmp)
            digest = file_sha256(tmp)
            os.replace(tmp, path)
            path.with_name(path.name + ".sha256").write_text(digest + "\n")
        except (MissingDependency, ModelLoadError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(str(path), f"cannot export {what} to ONNX: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
    return path

