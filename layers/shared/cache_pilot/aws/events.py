"""cache-pilot's own events on the default bus."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

WARMUP_REQUESTED = "Warm-up Requested"


class EventNotSent(Exception):
    pass


def request_warmup(events: EventBridgeClient, source: str, reason: str, retry_failed: bool) -> None:
    response = events.put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": WARMUP_REQUESTED,
                "Detail": json.dumps({"reason": reason, "retry_failed": retry_failed}),
            }
        ]
    )
    if response.get("FailedEntryCount"):
        entry = response["Entries"][0]
        raise EventNotSent(f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
