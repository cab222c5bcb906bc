"""What started a run: the EventBridge events the functions receive, reduced to what matters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cache_pilot.paths import is_under_path

PARAMETER_CHANGE = "Parameter Store Change"
SCHEDULED = "Scheduled Event"


class EventBridgeEnvelope(BaseModel):
    """What every function reads of an EventBridge event.

    A model of our own rather than Powertools' event data classes: importing those imports
    every event source's class, which costs the cold start more than the rest of a handler.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    id: str = ""
    source: str
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any] = Field(default_factory=dict)


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


@dataclass(frozen=True)
class BuildEnded:
    """A CodeBuild state change of the warm-up project, reduced to what the finish needs."""

    build_id: str
    build_status: str
    batch_id: str | None
    environment: dict[str, str] = field(default_factory=dict)


class WarmupRequestDetail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    reason: str = "requested"
    retry_failed: bool = False


def build_ended(detail: dict[str, Any]) -> BuildEnded:
    """The CodeBuild state-change detail: status, build id and the batch it carried."""
    information = detail.get("additional-information") or {}
    variables = {
        variable["name"]: variable.get("value", "")
        for variable in (information.get("environment") or {}).get("environment-variables", [])
        if "name" in variable
    }
    return BuildEnded(
        build_id=str(detail.get("build-id", "")),
        build_status=str(detail.get("build-status", "")),
        batch_id=variables.get("BATCH_ID") or None,
        environment=variables,
    )
