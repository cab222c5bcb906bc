"""What started a run: the EventBridge events the functions receive, reduced to what matters."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cache_pilot.aws.parameters import is_under_path

PARAMETER_CHANGE = "Parameter Store Change"
SCHEDULED = "Scheduled Event"


class ParameterChangeDetail(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    operation: str
    name: str
    type: str | None = None


class SyncTrigger(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="'parameter', 'schedule' or 'manual'")
    parameter: str | None = None
    operation: str | None = None
    ignored_reason: str | None = None

    @property
    def ignored(self) -> bool:
        return self.ignored_reason is not None


def sync_trigger(detail_type: str, detail: dict[str, Any], config_path: str) -> SyncTrigger:
    """Any event may start a sync: the sync reads the whole path, whatever changed.

    A parameter change outside the path is ignored; template.yaml's pattern should already
    have kept it out, this is the second line.
    """
    if detail_type == PARAMETER_CHANGE:
        change = ParameterChangeDetail.model_validate(detail)
        if not is_under_path(change.name, config_path):
            return SyncTrigger(
                kind="parameter",
                parameter=change.name,
                operation=change.operation,
                ignored_reason=f"{change.name} is not under {config_path}",
            )
        return SyncTrigger(kind="parameter", parameter=change.name, operation=change.operation)
    if detail_type == SCHEDULED:
        return SyncTrigger(kind="schedule")
    return SyncTrigger(kind="manual")


def account_of(function_arn: str) -> str | None:
    """The account a Lambda function runs in, from its ARN: no STS call needed."""
    parts = function_arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4].isdigit() else None
