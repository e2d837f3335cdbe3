"""Catalog routes: ``GET /videos`` (filtered, paged), ``GET /videos/{id}/similar`` and ``DELETE /videos/{id}``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Query

from tagging.serving.service import Service
from tagging.store import queries


def add_catalog_routes(app: FastAPI, svc: Service) -> None:
    """Browse, find neighbours and take down (registered before ``GET /videos/{id}``'s siblings)."""

    @app.get("/videos", tags=["catalog"])
    def list_videos(tag: str | None = Query(None, max_length=128, description="only videos with this tag"),
                    review: Literal["passed", "failed"] | None = Query(None, description="review gate outcome"),
                    limit: int = Query(50, ge=0, le=1000), offset: int = Query(0, ge=0)) -> dict[str, Any]:
        """The catalog, newest first: ``{"total", "offset", "limit", "items"}`` (no vectors)."""
        svc.require_ready()
        svc.hook.catalog.table.checkout_latest()
        return queries.list_videos(svc.hook.catalog, tag, review, limit, offset).to_dict()

    @app.get("/videos/{video_id}/similar", tags=["catalog"])
    def similar(video_id: str, space: Literal["content", "cf"] = Query("content", description=(
                "content: nearest by fused content vector; cf: nearest by CB2CF placement (cf_vector)")),
                k: int = Query(10, ge=1, le=1000)) -> dict[str, Any]:
        """Nearest videos of the catalog by cosine similarity (LanceDB vector search)."""
        svc.require_ready()
        svc.hook.catalog.table.checkout_latest()
        return {"video_id": video_id, "space": space, "items": queries.similar_videos(svc.hook.catalog, video_id, space, k)}

    @app.delete("/videos/{video_id}", tags=["catalog"])
    def delete(video_id: str) -> dict[str, Any]:
        """Take a video down: its row, its interactions and its exposure state are deleted (404 when it has none)."""
        svc.require_ready()
        return queries.takedown(svc.hook.catalog, svc.hook.interactions, video_id, svc.hook.exposure_store)
