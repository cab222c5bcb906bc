"""Scheduled rules receive no events, as in EventBridge.

moto treats a rule without an event pattern as matching every event, so a schedule-only rule
would run its target on every PutEvents as well. On AWS such a rule fires on its schedule only;
the local mode fires schedules on request (event_routing.fire_schedules).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.events.models import Rule

_install_lock = threading.Lock()
_installed = False


def install() -> None:
    """Keep events away from schedule-only rules. Idempotent."""
    global _installed
    with _install_lock:
        if _installed:
            return
        send_to_targets = Rule.send_to_targets

        @functools.wraps(send_to_targets)
        def send_matching_events(self: Rule, *args: Any, **kwargs: Any) -> None:
            if self.scheduled_expression and not self.event_pattern.get_pattern():
                return
            send_to_targets(self, *args, **kwargs)

        Rule.send_to_targets = send_matching_events  # type: ignore[method-assign]
        _installed = True
