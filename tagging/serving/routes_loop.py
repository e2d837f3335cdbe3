"""HTTP routes of the cold-start loop and of stated interests (registered by ``create_app``).

* ``POST /videos/{id}/exposure`` - put a reviewed video into its first exposure pool
  (``{"creator_id"?}``; 409 for a video that failed review or has no CF vector);
* ``GET /videos/{id}/exposure`` - its state and the history of stages and decisions, each
  decision with its metrics, the cohort threshold and the rule that fired;
* ``POST /exposure/run`` - the periodic job (``{"force"?: bool}``): decide the stages that
  are due, open the next pools, re-enter late bloomers; returns what it decided;
* ``PUT /users/{id}/interests`` - ``{"interests": [{"text" | "tag", "share"}]}``: stated
  interests, placed in the CF space and blended into the user's recommendations;
* ``GET /users/{id}/interests``.

Bad input is a 4xx JSON error ``{"error", "detail", "source"}`` and writes nothing.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cb2cf.exposure import LadderConfig
from tagging.errors import InvalidInterest
from tagging.serving.interests import get_interests, set_interests
from tagging.serving.loop import ColdStartLoop


class EnterBody(BaseModel):
    """Who made the video (for the creator prior, which only breaks ties)."""

    creator_id: str | None = Field(None, max_length=256)


class RunBody(BaseModel):
    """Options of one run of the loop's job."""

    force: bool = Field(False, description="decide every active stage now, due or not")


class InterestIn(BaseModel):
    """One stated interest: a text or a taxonomy tag id, and its share of the feed."""

    text: str | None = None
    tag: str | None = None
    share: float = 0.2


class InterestsIn(BaseModel):
    """A user's stated interests (replacing the old ones)."""

    interests: list[InterestIn]


def add_loop_routes(app: FastAPI, svc: Any, ladder: LadderConfig | None = None) -> None:
    """Register the loop's and the interests' routes on ``app`` (``svc``: the server's ``_Service``)."""
    lock = threading.Lock()
    state: dict[str, ColdStartLoop] = {}

    def loop() -> ColdStartLoop:
        svc.require_ready()
        with lock:
            if "loop" not in state:
                state["loop"] = ColdStartLoop(svc.hook, svc.hook.exposure_store, ladder)
        return state["loop"]

    # what the web page (tagging.serving.ui) shows when the loop is there
    svc.exposure = lambda video_id: loop().exposure(video_id)
    svc.interests = lambda user_id: get_interests(svc.hook, user_id)

    @app.exception_handler(InvalidInterest)
    async def _invalid_interest(_: Request, exc: InvalidInterest) -> JSONResponse:
        return svc.error(400, exc.error_class, exc.reason, exc.source)

    @app.post("/videos/{video_id}/exposure", status_code=201, tags=["cold start"])
    def enter(video_id: str, body: EnterBody = Body(default_factory=EnterBody)) -> dict[str, Any]:
        """Put a reviewed video into its first exposure pool (already in the loop: its state)."""
        return loop().enter(video_id, body.creator_id)

    @app.get("/videos/{video_id}/exposure", tags=["cold start"])
    def exposure(video_id: str) -> dict[str, Any]:
        """A video's exposure state and the history of its stages and decisions, with their reasons."""
        return loop().exposure(video_id)

    @app.post("/exposure/run", tags=["cold start"])
    def run(body: RunBody = Body(default_factory=RunBody)) -> dict[str, Any]:
        """The periodic job: stage decisions, next pools, re-entry."""
        return loop().run(force=body.force)

    @app.put("/users/{user_id}/interests", tags=["cold start"])
    def put_interests(user_id: str, body: InterestsIn) -> dict[str, Any]:
        """State interests (text or taxonomy tags, each with a share of the feed)."""
        svc.require_ready()
        return set_interests(svc.hook, user_id, [i.model_dump() for i in body.interests])

    @app.get("/users/{user_id}/interests", tags=["cold start"])
    def get_user_interests(user_id: str) -> dict[str, Any]:
        """A user's stated interests."""
        svc.require_ready()
        return get_interests(svc.hook, user_id)
