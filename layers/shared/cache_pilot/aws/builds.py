"""The CodeBuild warm-up project: start one build per batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_codebuild import CodeBuildClient


class BuildStartFailed(Exception):
    pass


def start_warmup_build(
    codebuild: CodeBuildClient,
    project: str,
    batch_id: str,
    batch_key: str,
    timeout_minutes: int,
) -> str:
    """Start a build for one batch and return its id.

    The batch id is the idempotency token, so a retried start within five minutes returns the
    same build instead of a second one.
    """
    try:
        response = codebuild.start_build(
            projectName=project,
            idempotencyToken=batch_id,
            timeoutInMinutesOverride=timeout_minutes,
            environmentVariablesOverride=[
                {"name": "BATCH_ID", "value": batch_id, "type": "PLAINTEXT"},
                {"name": "BATCH_KEY", "value": batch_key, "type": "PLAINTEXT"},
            ],
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise BuildStartFailed(
            f"CodeBuild did not start {project}: {error.get('Code')}: {error.get('Message')}"
        ) from exc
    return response["build"]["id"]


def running_builds(codebuild: CodeBuildClient, build_ids: list[str]) -> dict[str, str]:
    """The status of each known build (IN_PROGRESS, SUCCEEDED, ...); unknown builds are absent."""
    statuses: dict[str, str] = {}
    for start in range(0, len(build_ids), 100):
        response = codebuild.batch_get_builds(ids=build_ids[start : start + 100])
        for build in response.get("builds", []):
            statuses[build["id"]] = build.get("buildStatus", "UNKNOWN")
    return statuses
