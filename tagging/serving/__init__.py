"""Serving: the upload hook, the HTTP service, the backfill, and the cold-start loop (audience, warm-up).

Names are imported lazily, so a decode child that imports ``tagging.serving.isolation``
does not pay for the models, FastAPI or Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Audience": "audience", "AudienceConfig": "audience",
    "HookConfig": "hook", "UploadHook": "hook",
    "DecodePool": "isolation", "DecodeSettings": "isolation",
    "InteractionStore": "warmup", "WarmupConfig": "warmup", "fold_in": "warmup",
    "BatchWriter": "writer", "Maintainer": "writer", "WriterConfig": "writer", "maintain": "writer",
    "BackfillConfig": "backfill", "run_backfill": "backfill",
    "ServerConfig": "server", "create_app": "server",
}

__all__ = [  # noqa: RUF022 - grouped like _EXPORTS
    "Audience",
    "AudienceConfig",
    "HookConfig",
    "UploadHook",
    "DecodePool",
    "DecodeSettings",
    "InteractionStore",
    "WarmupConfig",
    "fold_in",
    "BatchWriter",
    "Maintainer",
    "WriterConfig",
    "maintain",
    "BackfillConfig",
    "run_backfill",
    "ServerConfig",
    "create_app",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"tagging.serving.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'tagging.serving' has no attribute {name!r}")
