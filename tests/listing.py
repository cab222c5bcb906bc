"""Images as a sync leaves them: PENDING items, for tests and benchmarks that need many."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from cache_pilot.aws.state_table import StateTable
from cache_pilot.config import CachedImage, parse_reference
from cache_pilot.state import utc_now
from cache_pilot.sync import pending_record


def list_pending(
    table: StateTable,
    references: Iterable[str],
    *,
    platforms: tuple[str, ...] = ("linux/amd64",),
    max_age_seconds: int = 7 * 86400,
    listed_at: datetime | None = None,
) -> None:
    """List each reference under the rule its first path component names."""
    now = listed_at or utc_now()
    for reference in references:
        parsed = parse_reference(reference)
        image = CachedImage(
            reference=str(parsed),
            repository=parsed.repository,
            tag=parsed.tag,
            digest=parsed.digest,
            rule_prefix=parsed.repository.split("/")[0],
            platforms=platforms,
            max_age_seconds=max_age_seconds,
        )
        if not table.list_image(pending_record(image, now)):
            raise ValueError(f"{reference} is already listed")
