"""Serving: the upload hook, the HTTP service, the backfill, and the cold-start loop (audience, warm-up).

Names are imported lazily, so a decode child that imports ``tagging.serving.isolation``
does not pay for the models, FastAPI or Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Audience": "cb2cf.audience", "AudienceConfig": "cb2cf.audience",
    "HookConfig": "tagging.serving.hook", "UploadHook": "tagging.serving.hook",
    "DecodePool": "tagging.serving.isolation", "DecodeSettings": "tagging.serving.isolation",
    "InteractionStore": "tagging.store.interactions", "FoldInConfig": "cb2cf.foldin",
    "fold_in": "cb2cf.foldin",
    "BatchWriter": "tagging.store.writer", "Maintainer": "tagging.store.writer", "WriterConfig": "tagging.store.writer",
    "maintain": "tagging.store.writer",
    "BackfillConfig": "tagging.serving.backfill.run", "run_backfill": "tagging.serving.backfill.run",
    "ServerConfig": "tagging.serving.server", "create_app": "tagging.serving.server",
}

__all__ = [  # noqa: RUF022 - grouped like _EXPORTS
    "Audience",
    "AudienceConfig",
    "HookConfig",
    "UploadHook",
    "DecodePool",
    "DecodeSettings",
    "InteractionStore",
    "FoldInConfig",
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
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tagging.serving' has no attribute {name!r}")
