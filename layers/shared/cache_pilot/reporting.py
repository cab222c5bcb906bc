"""How a sync's result is told: one structured summary for logs, the CLI and return values."""

from __future__ import annotations

from typing import Any

from cache_pilot.sync import ImageAction, RuleAction, SyncResult


def sync_summary(result: SyncResult) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "status": result.status.value,
        "images_waiting": result.images_waiting,
        "warmup_requested": result.warmup_requested,
    }
    if result.problems:
        summary["problems"] = list(result.problems)
    if result.plan is not None:
        plan = result.plan
        summary["rule_changes"] = [
            {"action": change.action.value, "prefix": change.prefix, "reason": change.reason}
            for change in plan.rule_changes
        ]
        summary["conflicts"] = [str(conflict) for conflict in plan.conflicts]
        summary["image_changes"] = {
            action.value: sum(1 for change in plan.image_changes if change.action is action)
            for action in ImageAction
        }
    if result.report is not None:
        summary["failures"] = [outcome.error for outcome in result.report.failures]
        summary["validations"] = {
            outcome.change.prefix: outcome.validation.model_dump(mode="json")
            for outcome in result.report.rule_outcomes
            if outcome.validation is not None
        }
    return summary


RULE_METRICS = {
    RuleAction.CREATE: "RulesCreated",
    RuleAction.UPDATE: "RulesUpdated",
    RuleAction.REPLACE: "RulesReplaced",
    RuleAction.DELETE: "RulesDeleted",
    RuleAction.FORGET: "RuleRecordsForgotten",
}


def rule_metric_counts(result: SyncResult) -> dict[str, int]:
    """Metric name to count of rule changes that succeeded."""
    if result.report is None:
        return {}
    counts: dict[str, int] = {}
    for outcome in result.report.rule_outcomes:
        if outcome.succeeded:
            name = RULE_METRICS[outcome.change.action]
            counts[name] = counts.get(name, 0) + 1
    return counts
