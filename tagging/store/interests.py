"""The ``interests`` table: what users say they want in their feed, placed in the CF space.

A stated interest is a text ("exam revision") or a taxonomy tag id, with the share of the
feed the user wants for it. The service places it in the CF space (the text through the
pipeline's text extractor and the CB2CF model's text view, other views missing) and stores
the vector here, one row per user, replaced whole on every ``put``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from tagging.errors import InvalidInterest
from tagging.store.lance import sql_string
from tagging.store.sidetable import SideTable

logger = logging.getLogger(__name__)

INTERESTS_TABLE = "interests"
MAX_TEXT_CHARS = 200
MAX_INTERESTS = 10
SCHEMA = pa.schema([
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("interests_json", pa.string(), nullable=False),
    pa.field("updated_at", pa.timestamp("us", tz="UTC"), nullable=False),
])


@dataclass
class Interest:
    """One stated interest.

    Attributes:
        label: The text or the tag id as the user gave it.
        kind: ``"text"`` or ``"tag"``.
        share: Share of the feed wanted for it, in (0, 1].
        vector: Its place in the CF space.
    """

    label: str
    kind: str
    share: float
    vector: np.ndarray

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (vector as a list)."""
        return asdict(self) | {"vector": np.asarray(self.vector, np.float32).round(6).tolist()}


def check_interests(user_id: str, items: list[dict[str, Any]], tags: set[str]) -> list[dict[str, Any]]:
    """Validate ``[{"text" | "tag", "share"}, ...]`` before anything is embedded or stored.

    Returns:
        ``[{"label", "kind", "share"}, ...]``.

    Raises:
        InvalidInterest: Not 1..MAX_INTERESTS items, empty or over-long text, an unknown tag,
            both or neither of text/tag, a share outside (0, 1], or shares summing over 1.
    """
    if not 1 <= len(items) <= MAX_INTERESTS:
        raise InvalidInterest(user_id, f"give 1 to {MAX_INTERESTS} interests, got {len(items)}")
    out = []
    for n, it in enumerate(items):
        text, tag = it.get("text"), it.get("tag")
        if (text is None) == (tag is None):
            raise InvalidInterest(user_id, f"interest {n}: give exactly one of 'text' or 'tag'")
        if text is not None:
            text = str(text).strip()
            if not text or len(text) > MAX_TEXT_CHARS:
                raise InvalidInterest(user_id, f"interest {n}: text must be 1 to {MAX_TEXT_CHARS} characters, "
                                               f"got {len(text)}")
        elif str(tag) not in tags:
            raise InvalidInterest(user_id, f"interest {n}: {tag!r} is not a taxonomy tag")
        share = it.get("share", 0.2)
        if not isinstance(share, (int, float)) or not np.isfinite(share) or not 0.0 < float(share) <= 1.0:
            raise InvalidInterest(user_id, f"interest {n}: share must be in (0, 1], got {share!r}")
        out.append({"label": text if text is not None else str(tag), "kind": "text" if text is not None else "tag",
                    "share": float(share)})
    if sum(i["share"] for i in out) > 1.0 + 1e-9:
        raise InvalidInterest(user_id, "the shares of all interests add up to more than 1")
    return out


class InterestStore(SideTable):
    """Stated interests per user in LanceDB (the ``interests`` table beside the catalog)."""

    NAME, KEY, SCHEMA = INTERESTS_TABLE, "user_id", SCHEMA

    def put(self, user_id: str, interests: list[Interest]) -> None:
        """Replace the user's interests.

        Raises:
            CatalogError: The write failed.
        """
        row = {"user_id": str(user_id), "interests_json": json.dumps([i.to_json() for i in interests]),
               "updated_at": datetime.now(UTC)}
        self.upsert([row], f"the interests of {user_id!r}")

    def get(self, user_id: str) -> list[Interest]:
        """The user's interests (empty when none were stated)."""
        self.table.checkout_latest()
        rows = self.table.search().where(f"user_id = {sql_string(str(user_id))}").limit(1).to_list()
        if not rows:
            return []
        return [Interest(d["label"], d["kind"], float(d["share"]), np.asarray(d["vector"], np.float32))
                for d in json.loads(rows[0]["interests_json"])]
