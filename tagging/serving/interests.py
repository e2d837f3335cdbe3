"""Users steer their own feed: stated interests, validated, placed in the CF space and stored.

A text is embedded with the pipeline's text extractor and placed by the CB2CF model through
its text view (:func:`tagging.coldstart.place_text`); a taxonomy tag is placed the same way
from its category's name and description. Everything is checked and placed before anything
is written: a refused request stores nothing.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from tagging import coldstart
from tagging.errors import UnknownUser
from tagging.store.interests import Interest, InterestStore, check_interests
from tagging.tags.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)


class InterestHost(Protocol):
    """What stated interests need of the upload hook."""

    @property
    def pipeline(self) -> Any: ...

    @property
    def space(self) -> Any: ...

    @property
    def interest_store(self) -> InterestStore: ...


def _public(user_id: str, interests: list[Interest]) -> dict[str, Any]:
    return {"user_id": user_id, "interests": [{"label": i.label, "kind": i.kind, "share": i.share,
                                               "vector": i.to_json()["vector"]} for i in interests],
            "share": round(sum(i.share for i in interests), 6)}


def set_interests(host: InterestHost, user_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Validate, place and store a user's interests (replacing the old ones).

    Raises:
        UnknownUser: ``user_id`` is not in the CF space.
        InvalidInterest: A bad text, tag or share (see :func:`check_interests`).
        NotEligible: No CB2CF model with a text view.
    """
    if host.space is None or not host.space.has_user(user_id):
        raise UnknownUser(user_id, "user is not in the CF space")
    pipe = host.pipeline
    taxonomy = load_taxonomy(getattr(pipe.config, "taxonomy", None))
    cats = {c.id: c for c in taxonomy.categories}
    checked = check_interests(user_id, items, set(cats))
    model, text = getattr(pipe, "cb2cf", None), getattr(pipe, "text", None)
    placed = []
    for it in checked:
        words = it["label"] if it["kind"] == "text" else cats[it["label"]].texts()[0]
        placed.append(Interest(it["label"], it["kind"], it["share"], coldstart.place_text(model, text, words, user_id)))
    host.interest_store.put(user_id, placed)
    return _public(user_id, placed)


def get_interests(host: InterestHost, user_id: str) -> dict[str, Any]:
    """A user's stored interests (an empty list when none were stated)."""
    return _public(user_id, host.interest_store.get(user_id))
