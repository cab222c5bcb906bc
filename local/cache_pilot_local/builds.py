"""CodeBuild builds for moto 5.2.5, run for real from the project's buildspec.

moto's CodeBuild is canned: every build reports SUCCEEDED, overrides are dropped and no event is
sent. `install()` replaces its StartBuild, BatchGetBuilds and StopBuild (backend and request
handlers, as ecr_pull_through_cache.py extends ECR): StartBuild records the build IN_PROGRESS
with the project's environment and `environmentVariablesOverride`, honours
`timeoutInMinutesOverride` and `idempotencyToken` (the same token within five minutes returns the
same build) and queues it; BatchGetBuilds reports its real status and phases. The change is
process-wide (install_emulation() makes it).

`BuildRunner.run_pending()` runs the queued builds: the buildspec phase by phase in a sandbox
directory that stands for the build container's filesystem, with the build's environment; the
commands the warm-up buildspec uses are emulated against the embedded AWS, and
`python3 -m cache_pilot.warm` runs for real, against the emulated registry started for the
build's subnets (registry.py). A command, buildspec key or variable the emulation does not know
raises BuildspecNotEmulated naming it. The build ends as CodeBuild ends it (SUCCEEDED, FAILED,
TIMED_OUT) and a `CodeBuild Build State Change` event goes onto the default event bus of the
project's account and Region, where EventBridge rules route it.

Failures to inject: `fail_next_start` (the next StartBuild is refused with a CodeBuild error
code), `time_out_next_build`, `lose_next_event` (the next build run ends without its completion
event); a failing image is the upstream catalog's `fail`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import urlsplit

import boto3
import jmespath  # type: ignore[import-untyped]  # botocore's own dependency
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from moto.awslambda.exceptions import UnknownLayerException, UnknownLayerVersionException
from moto.awslambda.models import LayerVersion, lambda_backends
from moto.codebuild.exceptions import InvalidInputException, ResourceNotFoundException
from moto.codebuild.models import CodeBuildBackend, codebuild_backends
from moto.codebuild.responses import CodeBuildResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.events.models import events_backends

from cache_pilot_local.registry import (
    PullerNetwork,
    PullThroughRegistry,
    RegistryEndpoint,
    aws_sdk_environment,
    embedded_aws_credentials,
)
from cache_pilot_local.upstream import UpstreamCatalog

EVENT_SOURCE = "aws.codebuild"
BUILD_STATE_CHANGE = "CodeBuild Build State Change"
IDEMPOTENCY_WINDOW = timedelta(minutes=5)
MIN_TIMEOUT_MINUTES, MAX_TIMEOUT_MINUTES = 5, 2160
IN_PROGRESS, SUCCEEDED, FAILED, TIMED_OUT, STOPPED = (
    "IN_PROGRESS",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "STOPPED",
)
BUILDSPEC_PHASES = ("install", "pre_build", "build", "post_build")
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONTAINER_HOME = "/root"
AWS_CLI_SERVICE_ERROR = 254  # the AWS CLI's exit status when the service answered an error
AWS_CLI_PARAMETER_ERROR = 252
DEFAULT_START_FAILURE = (
    "AccountLimitExceededException",
    "Cannot have more than 0 builds in queue for the account",
)

# What CodeBuild knows in a buildspec, and what of it the emulation runs.
_BUILDSPEC_KEYS = {
    "version",
    "run-as",
    "env",
    "proxy",
    "batch",
    "phases",
    "reports",
    "artifacts",
    "cache",
}
_EMULATED_BUILDSPEC_KEYS = {"version", "env", "phases"}
_ENV_KEYS = {
    "shell",
    "variables",
    "parameter-store",
    "exported-variables",
    "secrets-manager",
    "git-credential-helper",
}
_EMULATED_ENV_KEYS = {"shell", "variables"}
_PHASE_KEYS = {"run-as", "on-failure", "runtime-versions", "commands", "finally"}
_EMULATED_PHASE_KEYS = {"runtime-versions", "commands"}
_EMULATED_RUNTIMES = {"python"}
_START_BUILD_PARAMETERS = {
    "projectName",
    "environmentVariablesOverride",
    "timeoutInMinutesOverride",
    "idempotencyToken",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TIMED_OUT_CONTEXT = ("BUILD_TIMED_OUT", "Build has timed out. ")
_WARM_FILE_OPTIONS = {"--batch", "--report", "--ca-file"}
_LAYER_ARN_PATTERN = r"arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+"
_LAYER_ARN = re.compile(
    r"arn:[a-zA-Z0-9-]+:lambda:(?P<region>[a-zA-Z0-9-]+):(?P<account>\d{12}):layer:"
    r"(?P<name>[a-zA-Z0-9-_]+):(?P<version>[0-9]+)"
)
_LAYER_ERRORS = {
    "ValidationException": "1 validation error detected: Value '{arn}' at 'arn' failed to "
    "satisfy constraint: Member must satisfy regular expression pattern: " + _LAYER_ARN_PATTERN,
    "ResourceNotFoundException": "The resource you requested does not exist.",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _event_time(moment: datetime) -> str:
    """CodeBuild's time format in events: 'Nov 29, 2026 10:15:02 AM'."""
    hour = moment.hour % 12 or 12
    return f"{moment:%b} {moment.day}, {moment:%Y} {hour}:{moment:%M:%S} {moment:%p}"


class BuildspecNotEmulated(Exception):
    """The buildspec uses a command, key or variable the emulation does not know."""


class _StartRefused(JsonRESTError):
    code = 400

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(error_code, message)


# --- builds ----------------------------------------------------------------------------------


@dataclass
class _Phase:
    phase_type: str
    started: datetime
    ended: datetime | None = None
    status: str | None = None
    context: tuple[str, str] | None = None  # (status code, message) of a phase that failed

    def end(self, status: str, context: tuple[str, str] | None = None) -> None:
        self.ended, self.status, self.context = _now(), status, context

    def to_api(self) -> dict[str, Any]:
        phase: dict[str, Any] = {"phaseType": self.phase_type, "startTime": self.started}
        if self.ended is not None:
            phase["endTime"] = self.ended
            phase["durationInSeconds"] = int((self.ended - self.started).total_seconds())
        if self.status is not None:
            phase["phaseStatus"] = self.status
        if self.context is not None:
            phase["contexts"] = [{"statusCode": self.context[0], "message": self.context[1]}]
        return phase

    def to_event(self) -> dict[str, Any]:
        if self.phase_type == "COMPLETED":
            return {"start-time": _event_time(self.started), "phase-type": self.phase_type}
        phase: dict[str, Any] = {
            "phase-context": [f"{self.context[0]}: {self.context[1]}"] if self.context else [],
            "start-time": _event_time(self.started),
        }
        if self.ended is not None:
            phase["end-time"] = _event_time(self.ended)
            phase["duration-in-seconds"] = int((self.ended - self.started).total_seconds())
        phase["phase-type"] = self.phase_type
        if self.status is not None:
            phase["phase-status"] = self.status
        return phase


@dataclass
class EmulatedBuild:
    """One build as CodeBuild tracks it; the project is read once, when it starts."""

    build_id: str
    arn: str
    number: int
    project_name: str
    account_id: str
    region: str
    buildspec: str
    environment: dict[str, Any]  # type, image, computeType, privilegedMode, ...
    variables: list[dict[str, str]]  # the project's, then the overrides
    timeout_minutes: int
    queued_timeout_minutes: int
    vpc_config: dict[str, Any] | None
    service_role: str
    log_group: str
    initiator: str
    started: datetime = field(default_factory=_now)
    status: str = IN_PROGRESS
    current_phase: str = "QUEUED"
    ended: datetime | None = None
    phases: list[_Phase] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def log_stream(self) -> str:
        return self.build_id.rsplit(":", 1)[1]

    @property
    def complete(self) -> bool:
        return self.status != IN_PROGRESS

    @property
    def network(self) -> PullerNetwork:
        """The build's subnets; a project without VpcConfig has AWS-managed internet access."""
        if not self.vpc_config:
            return PullerNetwork.of_subnets(None)
        return PullerNetwork.of_subnets(self.vpc_config.get("subnets", []))

    def enter(self, phase_type: str) -> _Phase:
        phase = _Phase(phase_type, _now())
        self.phases.append(phase)
        self.current_phase = phase_type
        self.write_log(f"Entering phase {phase_type}")
        return phase

    def finish(self, status: str) -> None:
        self.status = status
        self.enter("COMPLETED")
        self.ended = self.phases[-1].started

    def write_log(self, line: str) -> None:
        self.log.append(f"[Container] {_now():%Y/%m/%d %H:%M:%S.%f} {line}")

    def describe(self) -> dict[str, Any]:
        """The build as BatchGetBuilds answers it."""
        build: dict[str, Any] = {
            "id": self.build_id,
            "arn": self.arn,
            "buildNumber": self.number,
            "startTime": self.started,
            "currentPhase": self.current_phase,
            "buildStatus": self.status,
            "projectName": self.project_name,
            "phases": [phase.to_api() for phase in self.phases],
            "source": {"type": "NO_SOURCE", "buildspec": self.buildspec},
            "artifacts": {"location": ""},
            "environment": {**self.environment, "environmentVariables": self.variables},
            "serviceRole": self.service_role,
            "logs": {
                "groupName": self.log_group,
                "streamName": self.log_stream,
                "deepLink": self._deep_link(),
                "cloudWatchLogs": {"status": "ENABLED"},
            },
            "timeoutInMinutes": self.timeout_minutes,
            "queuedTimeoutInMinutes": self.queued_timeout_minutes,
            "buildComplete": self.complete,
            "initiator": self.initiator,
        }
        if self.ended is not None:
            build["endTime"] = self.ended
        if self.vpc_config:
            build["vpcConfig"] = self.vpc_config
        return build

    def event_detail(self) -> dict[str, Any]:
        """The detail of the `CodeBuild Build State Change` event for the current status."""
        environment = self.environment
        return {
            "build-status": self.status,
            "project-name": self.project_name,
            "build-id": self.arn,
            "additional-information": {
                "artifact": {"location": ""},
                "environment": {
                    "image": environment.get("image"),
                    "privileged-mode": bool(environment.get("privilegedMode", False)),
                    "compute-type": environment.get("computeType"),
                    "type": environment.get("type"),
                    "environment-variables": [
                        {"name": v["name"], "type": v.get("type", "PLAINTEXT"), "value": v["value"]}
                        for v in self.variables
                    ],
                },
                "timeout-in-minutes": self.timeout_minutes,
                "build-complete": self.complete,
                "initiator": self.initiator,
                "build-start-time": _event_time(self.started),
                "source": {"type": "NO_SOURCE"},
                "logs": {
                    "group-name": self.log_group,
                    "stream-name": self.log_stream,
                    "deep-link": self._deep_link(),
                },
                "phases": [phase.to_event() for phase in self.phases],
            },
            "current-phase": self.current_phase,
            "current-phase-context": "[]",
            "version": "1",
        }

    def _deep_link(self) -> str:
        return (
            f"https://console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#logEvent:group={self.log_group};stream={self.log_stream}"
        )


@dataclass
class _IdempotentStart:
    build_id: str
    fingerprint: str
    at: datetime


@dataclass
class _BuildFaults:
    """Failures injected into the next StartBuild calls and build runs."""

    start_failures: list[tuple[str, str]] = field(default_factory=list)
    time_outs: int = 0
    lost_events: int = 0


class EmulatedCodeBuildBackend(CodeBuildBackend):
    """Members that install() puts onto moto's CodeBuildBackend; never instantiated itself.

    The storage lives in the instance __dict__, created on first use, so moto's reset()
    empties it with the rest.
    """

    @property
    def emulated_builds(self) -> dict[str, EmulatedBuild]:
        builds: dict[str, EmulatedBuild] = self.__dict__.setdefault("_emulated_builds", {})
        return builds

    @property
    def build_queue(self) -> list[str]:
        queue: list[str] = self.__dict__.setdefault("_build_queue", [])
        return queue

    @property
    def build_faults(self) -> _BuildFaults:
        faults: _BuildFaults = self.__dict__.setdefault("_build_faults", _BuildFaults())
        return faults

    @property
    def idempotent_starts(self) -> dict[str, _IdempotentStart]:
        starts: dict[str, _IdempotentStart] = self.__dict__.setdefault("_idempotent_starts", {})
        return starts

    @property
    def build_lock(self) -> threading.RLock:
        lock: threading.RLock = self.__dict__.setdefault("_build_lock", threading.RLock())
        return lock

    def start_build(
        self,
        project_name: str,
        source_version: str | None = None,
        artifact_override: dict[str, Any] | None = None,
        *,
        environment_variables_override: list[dict[str, str]] | None = None,
        timeout_in_minutes_override: int | None = None,
        idempotency_token: str | None = None,
        initiator: str = "",
    ) -> dict[str, Any]:
        if project_name not in self.codebuild_projects:
            raise ResourceNotFoundException(
                f"Project cannot be found: arn:aws:codebuild:{self.region_name}:"
                f"{self.account_id}:project/{project_name}"
            )
        overrides = _checked_overrides(environment_variables_override or [])
        _check_timeout(timeout_in_minutes_override)
        with self.build_lock:
            if self.build_faults.start_failures:
                raise _StartRefused(*self.build_faults.start_failures.pop(0))
            fingerprint = json.dumps(
                [project_name, overrides, timeout_in_minutes_override], sort_keys=True
            )
            repeated = self._repeated_start(idempotency_token, fingerprint)
            if repeated is not None:
                return repeated.describe()
            build = self._new_build(project_name, overrides, timeout_in_minutes_override, initiator)
            if idempotency_token:
                self.idempotent_starts[idempotency_token] = _IdempotentStart(
                    build.build_id, fingerprint, build.started
                )
            self.emulated_builds[build.build_id] = build
            self.build_history.setdefault(project_name, []).append(build.build_id)
            self.build_queue.append(build.build_id)
            return build.describe()

    def batch_get_builds(self, ids: list[str]) -> list[dict[str, Any]]:
        with self.build_lock:
            return [self.emulated_builds[i].describe() for i in ids if i in self.emulated_builds]

    def stop_build(self, build_id: str) -> dict[str, Any] | None:
        with self.build_lock:
            build = self.emulated_builds.get(build_id)
            if build is None:
                raise ResourceNotFoundException(f"Build {build_id} does not exist")
            if build.complete or build_id not in self.build_queue:
                # A finished build stays as it ended; one that run_pending is running now is
                # not interrupted and ends as its run ends.
                return build.describe()
            self.build_queue.remove(build_id)
            build.phases[-1].end(STOPPED)
            build.finish(STOPPED)
        send_state_change(build)
        return build.describe()

    def take_queued_build(self) -> EmulatedBuild | None:
        with self.build_lock:
            while self.build_queue:
                build = self.emulated_builds[self.build_queue.pop(0)]
                if not build.complete:
                    return build
            return None

    def _repeated_start(self, token: str | None, fingerprint: str) -> EmulatedBuild | None:
        earlier = self.idempotent_starts.get(token or "")
        if earlier is None or _now() - earlier.at > IDEMPOTENCY_WINDOW:
            return None
        if earlier.fingerprint != fingerprint:
            raise InvalidInputException(
                f"Idempotency token {token} was already used for a StartBuild request with "
                "different parameters"
            )
        return self.emulated_builds[earlier.build_id]

    def _new_build(
        self,
        project_name: str,
        overrides: list[dict[str, str]],
        timeout: int | None,
        initiator: str,
    ) -> EmulatedBuild:
        project = self.codebuild_projects[project_name].project_metadata
        environment = {
            k: v for k, v in project["environment"].items() if k != "environmentVariables"
        }
        build_id = f"{project_name}:{uuid.uuid4()}"
        build = EmulatedBuild(
            build_id=build_id,
            arn=f"arn:aws:codebuild:{self.region_name}:{self.account_id}:build/{build_id}",
            number=len(self.build_history.get(project_name, [])) + 1,
            project_name=project_name,
            account_id=self.account_id,
            region=self.region_name,
            buildspec=project["source"].get("buildspec", ""),
            environment=environment,
            variables=_merged_variables(
                project["environment"].get("environmentVariables"), overrides
            ),
            timeout_minutes=timeout or int(project.get("timeoutInMinutes") or 60),
            queued_timeout_minutes=int(project.get("queuedTimeoutInMinutes") or 480),
            vpc_config=project.get("vpcConfig"),
            service_role=project["serviceRole"],
            log_group=_log_group(project),
            initiator=initiator,
        )
        submitted = _Phase("SUBMITTED", build.started)
        submitted.end(SUCCEEDED)
        build.phases = [submitted, _Phase("QUEUED", _now())]
        return build


def _checked_overrides(overrides: list[dict[str, str]]) -> list[dict[str, str]]:
    checked = []
    for variable in overrides:
        name, value = variable.get("name", ""), variable.get("value", "")
        if not name or name.startswith("CODEBUILD_"):
            raise InvalidInputException(
                f"Invalid environment variable name {name!r}: names starting with CODEBUILD_ "
                "are reserved"
            )
        variable_type = variable.get("type", "PLAINTEXT")
        if variable_type not in ("PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER"):
            raise InvalidInputException(f"Invalid environment variable type {variable_type}")
        checked.append({"name": name, "value": value, "type": variable_type})
    return checked


def _check_timeout(timeout: int | None) -> None:
    if timeout is not None and not MIN_TIMEOUT_MINUTES <= timeout <= MAX_TIMEOUT_MINUTES:
        raise InvalidInputException(
            f"Invalid timeoutInMinutesOverride {timeout}: it must be between "
            f"{MIN_TIMEOUT_MINUTES} and {MAX_TIMEOUT_MINUTES}"
        )


def _merged_variables(
    project: list[dict[str, str]] | None, overrides: list[dict[str, str]]
) -> list[dict[str, str]]:
    """The project's variables with the overrides applied: same name replaced in place."""
    merged = {
        v["name"]: {"name": v["name"], "value": v["value"], "type": v.get("type", "PLAINTEXT")}
        for v in project or []
    }
    for variable in overrides:
        merged[variable["name"]] = variable
    return list(merged.values())


def _log_group(project: Mapping[str, Any]) -> str:
    configured = project.get("logsConfig", {}).get("cloudWatchLogs", {}).get("groupName")
    return str(configured or f"/aws/codebuild/{project['name']}")


class EmulatedCodeBuildResponse(CodeBuildResponse):
    """Request handlers that install() puts onto moto's CodeBuildResponse; never instantiated."""

    @property
    def emulated_backend(self) -> EmulatedCodeBuildBackend:
        return cast(EmulatedCodeBuildBackend, self.codebuild_backend)

    def start_build(self) -> ActionResult:
        request = json.loads(self.body) if self.body else {}
        unsupported = sorted(set(request) - _START_BUILD_PARAMETERS)
        if unsupported:
            raise InvalidInputException(
                f"the CodeBuild emulation does not take {', '.join(unsupported)} "
                "(local/cache_pilot_local/builds.py)"
            )
        build = self.emulated_backend.start_build(
            self._get_param("projectName"),
            environment_variables_override=self._get_param("environmentVariablesOverride"),
            timeout_in_minutes_override=self._get_param("timeoutInMinutesOverride"),
            idempotency_token=self._get_param("idempotencyToken"),
            initiator=self.get_access_key(),
        )
        return ActionResult({"build": build})

    def batch_get_builds(self) -> ActionResult:
        ids: list[str] = self._get_param("ids") or []
        if any(":" not in build_id for build_id in ids):
            raise InvalidInputException("Invalid build ID provided")
        builds = self.emulated_backend.batch_get_builds(ids)
        found = {build["id"] for build in builds}
        return ActionResult(
            {"builds": builds, "buildsNotFound": [i for i in ids if i not in found]}
        )

    def stop_build(self) -> ActionResult:
        build_id = self._get_param("id")
        if ":" not in build_id:
            raise InvalidInputException("Invalid build ID provided")
        return ActionResult({"build": self.emulated_backend.stop_build(build_id)})


_REPLACED = {"start_build", "batch_get_builds", "stop_build"}
_ABSENT = object()
_install_lock = threading.Lock()
_originals: dict[type, dict[str, Any]] = {}


def install() -> None:
    """Puts the build emulation onto moto's CodeBuild, for this whole process. Idempotent."""
    with _install_lock:
        if _originals:
            return
        _originals[CodeBuildBackend] = _copy_members(EmulatedCodeBuildBackend, CodeBuildBackend)
        _originals[CodeBuildResponse] = _copy_members(EmulatedCodeBuildResponse, CodeBuildResponse)


def _copy_members(source: type, target: type) -> dict[str, Any]:
    """Copies the members and returns what they replaced on the target class."""
    members = {name: member for name, member in vars(source).items() if not name.startswith("__")}
    clashing = sorted(name for name in members if hasattr(target, name) and name not in _REPLACED)
    if clashing:
        raise RuntimeError(
            f"moto's {target.__name__} already defines {', '.join(clashing)}: check the CodeBuild "
            "emulation against this moto version"
        )
    replaced = {name: vars(target).get(name, _ABSENT) for name in members}
    for name, member in members.items():
        setattr(target, name, member)
    return replaced


def codebuild_backend(account_id: str, region: str) -> EmulatedCodeBuildBackend:
    install()
    return cast(EmulatedCodeBuildBackend, codebuild_backends[account_id][region])


def send_state_change(build: EmulatedBuild) -> dict[str, Any]:
    """Puts the build's state-change event on the default bus; returns the event as sent."""
    event = state_change_event(build)
    entries = events_backends[build.account_id][build.region].put_events(
        [
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event["resources"],
                "Time": datetime.fromisoformat(event["time"]).timestamp(),
            }
        ]
    )
    return {**event, "id": entries[0].get("EventId", "")}


def state_change_event(build: EmulatedBuild) -> dict[str, Any]:
    """The `CodeBuild Build State Change` event of the build's current status."""
    return {
        "version": "0",
        "id": "",
        "detail-type": BUILD_STATE_CHANGE,
        "source": EVENT_SOURCE,
        "account": build.account_id,
        "time": f"{_now():%Y-%m-%dT%H:%M:%SZ}",
        "region": build.region,
        "resources": [build.arn],
        "detail": build.event_detail(),
    }


# --- the buildspec ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Buildspec:
    variables: dict[str, str]
    runtime_versions: dict[str, str]
    phases: dict[str, tuple[str, ...]]  # install, pre_build, build, post_build: commands

    @classmethod
    def parse(cls, text: str) -> Buildspec:
        """Raises ValueError for what CodeBuild rejects (YAML_FILE_ERROR) and
        BuildspecNotEmulated for what it runs but the emulation does not."""
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"the buildspec is not YAML: {error}") from None
        if not isinstance(document, dict) or str(document.get("version")) != "0.2":
            raise ValueError("the buildspec must be a mapping with version: 0.2")
        _check_keys("the buildspec", document, _BUILDSPEC_KEYS, _EMULATED_BUILDSPEC_KEYS)
        env = document.get("env") or {}
        _check_keys("env", env, _ENV_KEYS, _EMULATED_ENV_KEYS)
        if env.get("shell", "bash") not in ("bash", "sh"):
            raise BuildspecNotEmulated(f"env/shell {env['shell']!r} is not emulated (bash, sh)")
        phases: dict[str, tuple[str, ...]] = {}
        runtimes: dict[str, Any] = {}
        for name, phase in (document.get("phases") or {}).items():
            if name not in BUILDSPEC_PHASES:
                raise ValueError(f"unknown buildspec phase {name!r}")
            _check_keys(f"phases/{name}", phase or {}, _PHASE_KEYS, _EMULATED_PHASE_KEYS)
            phases[name] = tuple(str(command) for command in (phase or {}).get("commands", []))
            runtimes.update((phase or {}).get("runtime-versions") or {})
        unknown_runtimes = sorted(set(runtimes) - _EMULATED_RUNTIMES)
        if unknown_runtimes:
            raise BuildspecNotEmulated(
                f"runtime-versions {', '.join(unknown_runtimes)} are not emulated (python only)"
            )
        variables = {str(k): str(v) for k, v in (env.get("variables") or {}).items()}
        return cls(variables, {str(k): str(v) for k, v in runtimes.items()}, phases)


def _check_keys(where: str, section: Any, known: set[str], emulated: set[str]) -> None:
    if not isinstance(section, dict):
        raise ValueError(f"{where} must be a mapping")
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"{where} has unknown keys {', '.join(unknown)}")
    not_emulated = sorted(set(section) - emulated)
    if not_emulated:
        raise BuildspecNotEmulated(
            f"{where} uses {', '.join(not_emulated)}, which the build emulation does not run; "
            "teach local/cache_pilot_local/builds.py"
        )


# --- the shell -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Literal:
    text: str
    quoted: bool


@dataclass(frozen=True)
class _Variable:
    name: str
    quoted: bool


@dataclass(frozen=True)
class _Substitution:
    source: str
    quoted: bool


_Segment = _Literal | _Variable | _Substitution


@dataclass(frozen=True)
class _Word:
    segments: tuple[_Segment, ...]

    def assignment_name(self) -> str | None:
        first = self.segments[0] if self.segments else None
        if isinstance(first, _Literal) and not first.quoted:
            match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=", first.text)
            if match:
                return match.group(1)
        return None

    def without_assignment(self) -> _Word:
        first = cast(_Literal, self.segments[0])
        rest = first.text.split("=", 1)[1]
        return _Word((_Literal(rest, False), *self.segments[1:]) if rest else self.segments[1:])


_OPERATORS = ("&&", "||")
_NOT_EMULATED_CHARACTERS = {
    "|": "pipes",
    ";": "';' command lists",
    "&": "background jobs",
    "<": "redirections",
    ">": "redirections",
    "`": "backquote substitution",
    "(": "subshells",
    ")": "subshells",
}


class _Lexer:
    """Splits one command line into words and && / || operators, keeping quoting."""

    def __init__(self, line: str) -> None:
        self._line = line
        self._position = 0
        self._tokens: list[_Word | str] = []
        self._segments: list[_Segment] = []
        self._in_word = False

    def tokens(self) -> list[_Word | str]:
        line = self._line
        while self._position < len(line):
            character = line[self._position]
            if character in " \t\n":
                self._end_word()
                self._position += 1
            elif line.startswith(_OPERATORS, self._position):
                self._end_word()
                self._tokens.append(line[self._position : self._position + 2])
                self._position += 2
            elif character == "#" and not self._in_word:
                break
            else:
                self._in_word = True
                self._word_character(character)
        self._end_word()
        return self._tokens

    def _word_character(self, character: str) -> None:
        line = self._line
        if character == "'":
            end = line.find("'", self._position + 1)
            if end < 0:
                raise BuildspecNotEmulated(f"unterminated ' quote in {line!r}")
            self._literal(line[self._position + 1 : end], quoted=True)
            self._position = end + 1
        elif character == '"':
            self._double_quoted()
        elif character == "\\":
            self._literal(line[self._position + 1 : self._position + 2], quoted=True)
            self._position += 2
        elif character == "$":
            self._expansion(quoted=False)
        elif character in _NOT_EMULATED_CHARACTERS:
            raise BuildspecNotEmulated(
                f"{_NOT_EMULATED_CHARACTERS[character]} ({character!r}) in {line!r} are not "
                "emulated"
            )
        elif character in "*?[":
            raise BuildspecNotEmulated(f"unquoted {character!r} (a glob) in {line!r}")
        else:
            self._literal(character, quoted=False)
            self._position += 1

    def _double_quoted(self) -> None:
        line = self._line
        self._position += 1
        while self._position < len(line) and line[self._position] != '"':
            character = line[self._position]
            if character == "\\" and line[self._position + 1 : self._position + 2] in '$`"\\':
                self._literal(line[self._position + 1], quoted=True)
                self._position += 2
            elif character == "$":
                self._expansion(quoted=True)
            elif character == "`":
                raise BuildspecNotEmulated(f"backquote substitution in {line!r} is not emulated")
            else:
                self._literal(character, quoted=True)
                self._position += 1
        if self._position >= len(line):
            raise BuildspecNotEmulated(f'unterminated " quote in {line!r}')
        self._position += 1

    def _expansion(self, *, quoted: bool) -> None:
        line, start = self._line, self._position
        following = line[start + 1 : start + 2]
        if line.startswith("$((", start):
            raise BuildspecNotEmulated(f"arithmetic expansion in {line!r} is not emulated")
        if following == "(":
            end = _closing_parenthesis(line, start + 2)
            self._segments.append(_Substitution(line[start + 2 : end], quoted))
            self._position = end + 1
        elif following == "{":
            end = line.find("}", start)
            name = line[start + 2 : end] if end > 0 else ""
            if not _NAME.fullmatch(name):
                raise BuildspecNotEmulated(f"${{{name}...}} in {line!r} is not emulated")
            self._segments.append(_Variable(name, quoted))
            self._position = end + 1
        elif (match := _NAME.match(line, start + 1)) is not None:
            self._segments.append(_Variable(match.group(0), quoted))
            self._position = match.end()
        elif following and following in "?$!#@*-0123456789":
            raise BuildspecNotEmulated(f"the special parameter ${following} in {line!r}")
        else:
            self._literal("$", quoted=quoted)
            self._position += 1

    def _literal(self, text: str, *, quoted: bool) -> None:
        last = self._segments[-1] if self._segments else None
        if isinstance(last, _Literal) and last.quoted == quoted:
            self._segments[-1] = _Literal(last.text + text, quoted)
        else:
            self._segments.append(_Literal(text, quoted))

    def _end_word(self) -> None:
        if self._in_word:
            self._tokens.append(_Word(tuple(self._segments)))
        self._segments, self._in_word = [], False


def _closing_parenthesis(line: str, position: int) -> int:
    depth, quote = 1, ""
    while position < len(line):
        character = line[position]
        if quote:
            if character == quote:
                quote = ""
            elif character == "\\" and quote == '"':
                position += 1
        elif character in "'\"":
            quote = character
        elif character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    raise BuildspecNotEmulated(f"unterminated $( in {line!r}")


@dataclass(frozen=True)
class _Result:
    status: int
    stdout: str = ""
    stderr: str = ""


class _DeadlinePassed(Exception):
    """The build's timeout ran out while a command ran."""


class _UsageError(Exception):
    """A command line its program refuses (a missing option value): a failed command."""


def _option_value(pending: Iterator[str], option: str) -> str:
    value = next(pending, None)
    if value is None:
        raise _UsageError(f"option {option}: requires a value")
    return value


_Command = Callable[[list[str], dict[str, str]], _Result]
_AwsOperation = Callable[[list[str], dict[str, str], str], _Result]


class _Shell:
    """Runs buildspec commands one line at a time, as the build's one bash does: variables set
    by a command stay for the next ones, exported ones reach the programs it starts."""

    def __init__(
        self,
        environment: dict[str, str],
        commands: Mapping[str, _Command],
        log: Callable[[str], None],
    ) -> None:
        self.variables = dict(environment)
        self._exported = set(environment)
        self._commands = commands
        self._log = log
        self._line = ""

    @property
    def exported(self) -> dict[str, str]:
        return {name: value for name, value in self.variables.items() if name in self._exported}

    def run(self, line: str) -> int:
        self._line = line
        status, _ = self._run_list(line, capture=False)
        return status

    def _run_list(self, line: str, *, capture: bool) -> tuple[int, str]:
        tokens = _Lexer(line).tokens()
        commands: list[tuple[str, list[_Word]]] = [("", [])]
        for token in tokens:
            if isinstance(token, str):
                commands.append((token, []))
            else:
                commands[-1][1].append(token)
        if any(not words for _, words in commands):
            raise BuildspecNotEmulated(f"an empty command around && or || in {line!r}")
        captured: list[str] = []
        status = 0
        for operator, words in commands:
            if (operator == "&&" and status != 0) or (operator == "||" and status == 0):
                continue
            result = self._run_command(words)
            status = result.status
            self._emit(result.stderr)
            if capture:
                captured.append(result.stdout)
            else:
                self._emit(result.stdout)
        return status, "".join(captured)

    def _run_command(self, words: list[_Word]) -> _Result:
        substitution_status: list[int] = []
        assignments: dict[str, str] = {}
        while words and (name := words[0].assignment_name()) is not None:
            value = self._expand(words[0].without_assignment(), substitution_status, split=False)
            assignments[name] = value
            words = words[1:]
        if not words:
            self.variables.update(assignments)
            return _Result(substitution_status[-1] if substitution_status else 0)
        arguments = [self._expand(word, substitution_status, split=True) for word in words]
        command = self._commands.get(arguments[0])
        if command is None:
            raise BuildspecNotEmulated(
                f"the command {arguments[0]!r} in {self._line!r} is not emulated (emulated: "
                f"{', '.join(sorted(self._commands))}); teach local/cache_pilot_local/builds.py"
            )
        return command(arguments[1:], {**self.exported, **assignments})

    def _expand(self, word: _Word, substitution_status: list[int], *, split: bool) -> str:
        """The word's text; `split` says whether bash would split and glob its unquoted
        expansions there (everywhere but in an assignment), which is refused."""
        parts = []
        for segment in word.segments:
            if isinstance(segment, _Literal):
                parts.append(segment.text)
                continue
            if isinstance(segment, _Variable):
                value, what = self._variable(segment.name), f"${segment.name}"
            else:
                status, output = self._run_list(segment.source, capture=True)
                substitution_status.append(status)
                value, what = output.rstrip("\n"), f"$({segment.source})"
            if split and not segment.quoted and (not value or re.search(r"[\s*?\[]", value)):
                raise BuildspecNotEmulated(
                    f"unquoted {what} in {self._line!r} expands to {value!r}, which bash would "
                    "split or glob; quote it"
                )
            parts.append(value)
        return "".join(parts)

    def _variable(self, name: str) -> str:
        if name not in self.variables:
            raise BuildspecNotEmulated(
                f"{self._line!r} uses ${name}, which is not set in the build (not a variable "
                "of the project, of StartBuild's overrides, of the buildspec or of CodeBuild)"
            )
        return self.variables[name]

    def _emit(self, text: str) -> None:
        for line in text.splitlines():
            self._log(line)


# --- the build container ---------------------------------------------------------------------


class _Sandbox:
    """A directory that stands for the build container's filesystem: /tmp is root/tmp."""

    def __init__(self, root: Path, working_directory: str) -> None:
        self.root = root
        self.working_directory = working_directory
        for directory in ("/tmp", "/opt", CONTAINER_HOME, working_directory):
            self.path(directory).mkdir(parents=True, exist_ok=True)

    def path(self, container_path: str) -> Path:
        absolute = PurePosixPath(
            container_path
            if container_path.startswith("/")
            else f"{self.working_directory}/{container_path}"
        )
        parts: list[str] = []
        for part in absolute.parts[1:]:
            if part == "..":
                if parts:
                    parts.pop()
            elif part != ".":
                parts.append(part)
        return self.root.joinpath(*parts)


@dataclass
class _Downloads:
    """Pre-signed URLs the build can fetch with curl, and what they serve."""

    contents: dict[str, bytes] = field(default_factory=dict)

    def publish(self, url: str, content: bytes) -> str:
        self.contents[url] = content
        return url


class _Commands:
    """The commands of the warm-up buildspec, emulated against the embedded AWS."""

    def __init__(
        self,
        sandbox: _Sandbox,
        endpoint_url: str,
        registry: RegistryEndpoint,
        downloads: _Downloads,
        deadline: float,
    ) -> None:
        self._sandbox = sandbox
        self._endpoint_url = endpoint_url
        self._registry = registry
        self._downloads = downloads
        self._deadline = deadline
        self.reports: list[Path] = []

    def table(self) -> dict[str, _Command]:
        return {
            "aws": self.aws,
            "curl": self.curl,
            "unzip": self.unzip,
            "test": self.test,
            "true": lambda arguments, environment: _Result(0),
            "false": lambda arguments, environment: _Result(1),
            "python3": self.python3,
        }

    # -- aws --------------------------------------------------------------------------------

    def aws(self, arguments: list[str], environment: dict[str, str]) -> _Result:
        operations: dict[tuple[str, str], tuple[dict[str, int], _AwsOperation]] = {
            ("lambda", "get-layer-version-by-arn"): ({"--arn": 1}, self._get_layer_version),
            ("s3", "cp"): (
                {"--quiet": 0, "--only-show-errors": 0, "--no-progress": 0},
                self._s3_cp,
            ),
        }
        known = operations.get((arguments[0], arguments[1]) if len(arguments) > 1 else ("", ""))
        if known is None:
            raise BuildspecNotEmulated(
                f"'aws {' '.join(arguments[:2])}' is not emulated (emulated: "
                f"{', '.join(' '.join(operation) for operation in operations)})"
            )
        accepted, run = known
        try:
            options = _aws_options(arguments[2:], accepted)
        except _UsageError as error:
            return _Result(AWS_CLI_PARAMETER_ERROR, stderr=f"aws: error: {error}\n")
        region = options.get("--region") or environment.get("AWS_REGION")
        if not region:
            return _Result(253, stderr="You must specify a region.\n")
        return run(arguments[2:], options, region)

    def _get_layer_version(
        self, arguments: list[str], options: dict[str, str], region: str
    ) -> _Result:
        arn = options.get("--arn", "")
        if not arn:
            return _Result(
                AWS_CLI_PARAMETER_ERROR,
                stderr="\nParameter validation failed:\nInvalid length for parameter Arn, "
                "value: 0, valid min length: 1\n",
            )
        layer = _layer_version(arn, region)
        if isinstance(layer, str):
            return _Result(
                AWS_CLI_SERVICE_ERROR,
                stderr=f"\nAn error occurred ({layer}) when calling the GetLayerVersionByArn "
                f"operation: {_LAYER_ERRORS[layer].format(arn=arn)}\n",
            )
        document = layer.get_layer_version()
        # moto's Location is "s3://"; Lambda answers a pre-signed URL of the layer's zip.
        document["Content"]["Location"] = self._downloads.publish(
            _layer_url(arn), bytes(layer.code_bytes)
        )
        return _Result(0, _cli_output(document, options))

    def _s3_cp(self, arguments: list[str], options: dict[str, str], region: str) -> _Result:
        paths = [argument for argument in arguments if not argument.startswith("--")]
        if len(paths) != 2 or [p.startswith("s3://") for p in paths].count(True) != 1:
            raise BuildspecNotEmulated(
                f"'aws s3 cp {' '.join(arguments)}': only one S3 object to or from one file is "
                "emulated"
            )
        source, destination = paths
        s3 = self._client("s3", region)
        try:
            if source.startswith("s3://"):
                result = self._download(s3, source, destination)
            else:
                result = self._upload(s3, source, destination)
        except (ClientError, ParamValidationError) as error:
            return _Result(1, stderr=f"fatal error: {error}\n")
        quiet = "--quiet" in options or "--only-show-errors" in options
        return _Result(result.status, "" if quiet else result.stdout, result.stderr)

    def _download(self, s3: Any, source: str, destination: str) -> _Result:
        bucket, key = _split_s3_url(source)
        s3.head_object(Bucket=bucket, Key=key)  # what the CLI asks first, and how it fails
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        target = self._sandbox.path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        return _Result(0, f"download: {source} to {destination}\n")

    def _upload(self, s3: Any, source: str, destination: str) -> _Result:
        local = self._sandbox.path(source)
        if not local.is_file():
            return _Result(255, stderr=f"\nThe user-provided path {source} does not exist.\n")
        bucket, key = _split_s3_url(destination)
        s3.put_object(Bucket=bucket, Key=key, Body=local.read_bytes())
        return _Result(0, f"upload: {source} to {destination}\n")

    def _client(self, service: str, region: str) -> Any:
        access_key_id, secret_access_key = embedded_aws_credentials()
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self._endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"max_attempts": 1}),
        )

    # -- files ------------------------------------------------------------------------------

    def curl(self, arguments: list[str], environment: dict[str, str]) -> _Result:
        try:
            flags, output, urls = _curl_arguments(arguments)
        except _UsageError as error:
            return _Result(2, stderr=f"curl: {error}\n")
        if len(urls) != 1:
            raise BuildspecNotEmulated(f"curl {' '.join(arguments)}: one URL is emulated")
        content = self._downloads.contents.get(urls[0])
        show_errors = "s" not in flags or "S" in flags
        if content is None:
            message = f"curl: (6) Could not resolve host: {urlsplit(urls[0]).hostname}\n"
            return _Result(6, stderr=message if show_errors else "")
        if output is None:
            return _Result(0, content.decode(errors="replace"))
        target = self._sandbox.path(output)
        if not target.parent.is_dir():
            message = "curl: (23) Failure writing output to destination\n"
            return _Result(23, stderr=message if show_errors else "")
        target.write_bytes(content)
        return _Result(0)

    def unzip(self, arguments: list[str], environment: dict[str, str]) -> _Result:
        try:
            quiet, archive, destination = _unzip_arguments(arguments)
        except _UsageError as error:
            return _Result(10, stderr=f"unzip: {error}\n")
        source = self._sandbox.path(archive)
        if not source.is_file():
            return _Result(
                9,
                stderr=f"unzip:  cannot find or open {archive}, {archive}.zip or {archive}.ZIP.\n",
            )
        target = self._sandbox.path(destination or self._sandbox.working_directory)
        try:
            with zipfile.ZipFile(source) as zipped:
                names = zipped.namelist()
                zipped.extractall(target)
        except zipfile.BadZipFile:
            return _Result(
                9,
                stderr=f"  End-of-central-directory signature not found.\nunzip:  cannot find "
                f"zipfile directory in {archive}.\n",
            )
        if quiet:
            return _Result(0)
        shown = destination or "."
        return _Result(
            0, f"Archive:  {archive}\n" + "".join(f"  inflating: {shown}/{n}\n" for n in names)
        )

    def test(self, arguments: list[str], environment: dict[str, str]) -> _Result:
        checks: dict[str, Callable[[Path], bool]] = {
            "-f": Path.is_file,
            "-d": Path.is_dir,
            "-e": Path.exists,
            "-s": lambda path: path.is_file() and path.stat().st_size > 0,
        }
        if len(arguments) != 2 or arguments[0] not in checks:
            raise BuildspecNotEmulated(
                f"test {' '.join(arguments)}: only {', '.join(checks)} PATH are emulated"
            )
        return _Result(0 if checks[arguments[0]](self._sandbox.path(arguments[1])) else 1)

    # -- the warm-up program ----------------------------------------------------------------

    def python3(self, arguments: list[str], environment: dict[str, str]) -> _Result:
        if arguments[:2] != ["-m", "cache_pilot.warm"]:
            raise BuildspecNotEmulated(
                f"python3 {' '.join(arguments)}: only 'python3 -m cache_pilot.warm' is emulated"
            )
        program = [
            sys.executable,
            "-m",
            "cache_pilot.warm",
            *self._sandboxed_options(arguments[2:]),
        ]
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlinePassed
        try:
            done = subprocess.run(
                program,
                env=self._program_environment(environment),
                cwd=self._sandbox.path(self._sandbox.working_directory),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=remaining,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise _DeadlinePassed from None
        return _Result(done.returncode, done.stdout)

    def _sandboxed_options(self, arguments: list[str]) -> list[str]:
        """The program's arguments with its file options pointing into the sandbox."""
        mapped: list[str] = []
        file_option: str | None = None
        for argument in arguments:
            option, equals, value = argument.partition("=")
            if file_option is not None:
                argument, file_option = self._sandboxed_file(file_option, argument), None
            elif option in _WARM_FILE_OPTIONS and equals:
                argument = f"{option}={self._sandboxed_file(option, value)}"
            elif option in _WARM_FILE_OPTIONS:
                file_option = option
            mapped.append(argument)
        return mapped

    def _sandboxed_file(self, option: str, container_path: str) -> str:
        path = self._sandbox.path(container_path)
        if option == "--report":
            self.reports.append(path)
        return str(path)

    def _program_environment(self, environment: dict[str, str]) -> dict[str, str]:
        python_path = [
            str(self._sandbox.path(entry)) if entry.startswith("/") else entry
            for entry in environment.get("PYTHONPATH", "").split(os.pathsep)
            if entry
        ]
        region = environment.get("AWS_REGION", "")
        return {
            **environment,
            "PYTHONPATH": os.pathsep.join([*python_path, str(self._registry.python_path)]),
            "HOME": str(self._sandbox.path(environment.get("HOME", CONTAINER_HOME))),
            "TMPDIR": str(self._sandbox.path("/tmp")),
            **self._registry.program_environment(),
            **aws_sdk_environment(self._endpoint_url, region),
        }


def _aws_options(arguments: list[str], options: Mapping[str, int]) -> dict[str, str]:
    """The --options of an aws command (the operation's and the global ones), by name."""
    known = {**options, "--region": 1, "--output": 1, "--query": 1, "--no-cli-pager": 0}
    found: dict[str, str] = {}
    pending = iter(arguments)
    for argument in pending:
        if not argument.startswith("--"):
            continue
        if argument not in known:
            raise BuildspecNotEmulated(f"the aws option {argument} is not emulated")
        found[argument] = _option_value(pending, argument) if known[argument] else ""
    output = found.get("--output", "json")
    if output not in ("json", "text"):
        raise BuildspecNotEmulated(f"aws --output {output} is not emulated (json, text)")
    return found


def _cli_output(document: Any, options: Mapping[str, str]) -> str:
    query = options.get("--query")
    value = jmespath.search(query, document) if query else document
    if options.get("--output", "json") == "text":
        return _text(value) + "\n"
    return json.dumps(value, indent=4, default=str) + "\n"


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\t".join(_text(item) for item in value)
    if isinstance(value, dict):
        return "\t".join(_text(item) for item in value.values())
    return "None" if value is None else str(value)


def _split_s3_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def _layer_url(arn: str) -> str:
    parts = arn.split(":")
    region, account, name = parts[3], parts[4], parts[6]
    return (
        f"https://awslambda-{region}-layers.s3.{region}.amazonaws.com/snapshots/{account}/"
        f"{name}-{uuid.uuid4()}?versionId={uuid.uuid4().hex}&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Expires=600&X-Amz-Signature={uuid.uuid4().hex}"
    )


def _layer_version(arn: str, region: str) -> LayerVersion | str:
    """The layer version in moto's Lambda, or the error code GetLayerVersionByArn answers.

    Looked up in this process: moto 5.2.5 does not serve GetLayerVersionByArn.
    """
    match = _LAYER_ARN.fullmatch(arn)
    if match is None:
        return "ValidationException"
    if match["region"] != region:
        return "ResourceNotFoundException"
    try:
        backend = lambda_backends[match["account"]][region]
        return backend.get_layer_version(match["name"], match["version"])
    except (UnknownLayerException, UnknownLayerVersionException):
        return "ResourceNotFoundException"


def _curl_arguments(arguments: list[str]) -> tuple[set[str], str | None, list[str]]:
    long_flags = {"--fail": "f", "--silent": "s", "--show-error": "S", "--location": "L"}
    flags: set[str] = set()
    output: str | None = None
    urls: list[str] = []
    pending = iter(arguments)
    for argument in pending:
        if argument in long_flags:
            flags.add(long_flags[argument])
        elif argument in ("--output", "-o"):
            output = _option_value(pending, argument)
        elif argument.startswith("-") and not argument.startswith("--"):
            for letter in argument[1:]:
                if letter == "o":
                    output = _option_value(pending, "-o")
                elif letter in "fsSL":
                    flags.add(letter)
                else:
                    raise BuildspecNotEmulated(f"the curl option -{letter} is not emulated")
        elif argument.startswith("-"):
            raise BuildspecNotEmulated(f"the curl option {argument} is not emulated")
        else:
            urls.append(argument)
    return flags, output, urls


def _unzip_arguments(arguments: list[str]) -> tuple[bool, str, str | None]:
    quiet, destination, files = False, None, []
    pending = iter(arguments)
    for argument in pending:
        if argument == "-q":
            quiet = True
        elif argument == "-o":
            continue  # overwrite without asking: what extractall does
        elif argument == "-d":
            destination = _option_value(pending, "-d")
        elif argument.startswith("-"):
            raise BuildspecNotEmulated(f"the unzip option {argument} is not emulated")
        else:
            files.append(argument)
    if len(files) != 1:
        raise BuildspecNotEmulated(f"unzip {' '.join(arguments)}: one archive is emulated")
    return quiet, files[0], destination


# --- running builds --------------------------------------------------------------------------


@dataclass(frozen=True)
class FinishedBuild:
    """What run_pending did with one build."""

    build_id: str
    build_arn: str
    status: str
    event_sent: bool
    event: dict[str, Any]  # the completion event, as sent or as it would have been
    report: dict[str, Any] | None  # the warm-up program's report, when it wrote one
    log: tuple[str, ...]
    registry_log: tuple[str, ...]


class BuildRunner:
    """Runs the queued builds of one account and Region against the embedded AWS."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        account_id: str,
        catalog: UpstreamCatalog,
        *,
        work_dir: Path | None = None,
    ) -> None:
        install()
        self.endpoint_url = endpoint_url
        self.region = region
        self.account_id = account_id
        self._owned_dir = None if work_dir else tempfile.TemporaryDirectory(prefix="builds-")
        self.work_dir = work_dir or Path(self._owned_dir.name)  # type: ignore[union-attr]
        self.registry = PullThroughRegistry(
            account_id, region, catalog, endpoint_url=endpoint_url, work_dir=self.work_dir
        )

    @property
    def catalog(self) -> UpstreamCatalog:
        return self.registry.catalog

    def close(self) -> None:
        self.registry.close()
        if self._owned_dir is not None:
            self._owned_dir.cleanup()

    def __enter__(self) -> BuildRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- failures to inject -----------------------------------------------------------------

    def fail_next_start(
        self, code: str = DEFAULT_START_FAILURE[0], message: str = DEFAULT_START_FAILURE[1]
    ) -> None:
        """The next StartBuild is refused with this CodeBuild error code."""
        backend = self._backend()
        with backend.build_lock:
            backend.build_faults.start_failures.append((code, message))

    def time_out_next_build(self) -> None:
        """The next build run times out in its BUILD phase, after its commands ran (what was
        pulled stays cached); post_build does not run, so no report is uploaded. A build that
        fails before its BUILD phase fails as it would."""
        backend = self._backend()
        with backend.build_lock:
            backend.build_faults.time_outs += 1

    def lose_next_event(self) -> None:
        """The next build run finishes, but its completion event is never delivered."""
        backend = self._backend()
        with backend.build_lock:
            backend.build_faults.lost_events += 1

    # -- running ----------------------------------------------------------------------------

    def run_pending(self) -> list[FinishedBuild]:
        """Runs every queued build to its end, in the order they were started.

        Raises BuildspecNotEmulated when a build uses what the emulation does not know; that
        build ends FAILED without an event, and the builds after it stay queued.
        """
        backend = self._backend()
        finished = []
        while (build := backend.take_queued_build()) is not None:
            with backend.build_lock:
                faults = backend.build_faults
                time_out, faults.time_outs = faults.time_outs > 0, max(faults.time_outs - 1, 0)
                lose, faults.lost_events = faults.lost_events > 0, max(faults.lost_events - 1, 0)
            finished.append(self._run(build, time_out=time_out, lose_event=lose))
        return finished

    def _run(self, build: EmulatedBuild, *, time_out: bool, lose_event: bool) -> FinishedBuild:
        run = _BuildRun(self, build, self.work_dir / "builds" / build.log_stream, time_out)
        try:
            run.execute()
        except BuildspecNotEmulated as problem:
            run.abandon(str(problem))
            raise
        if lose_event:
            build.write_log("(emulation) the completion event of this build is lost")
            event = state_change_event(build)
        else:
            event = send_state_change(build)
        return FinishedBuild(
            build_id=build.build_id,
            build_arn=build.arn,
            status=build.status,
            event_sent=not lose_event,
            event=event,
            report=run.report(),
            log=tuple(build.log),
            registry_log=tuple(run.registry_log),
        )

    def _backend(self) -> EmulatedCodeBuildBackend:
        return codebuild_backend(self.account_id, self.region)


class _BuildRun:
    """One run of one build: provisioning, the buildspec's phases, and the end."""

    def __init__(
        self, runner: BuildRunner, build: EmulatedBuild, directory: Path, time_out: bool
    ) -> None:
        self._runner = runner
        self._build = build
        self._sandbox = _Sandbox(directory, f"/codebuild/output/src{build.number}/src")
        self._time_out = time_out
        self._commands: _Commands | None = None
        self.registry_log: list[str] = []

    def execute(self) -> None:
        build = self._build
        build.phases[-1].end(SUCCEEDED)  # QUEUED
        self._phase_succeeded("PROVISIONING")
        send_state_change(build)  # IN_PROGRESS, as CodeBuild sends when a build starts
        try:
            spec = Buildspec.parse(build.buildspec)
        except ValueError as error:
            build.enter("DOWNLOAD_SOURCE").end(FAILED, ("YAML_FILE_ERROR", str(error)))
            self._end(FAILED, finalize_only=True)
            return
        self._phase_succeeded("DOWNLOAD_SOURCE")
        environment = self._environment(spec)
        deadline = time.monotonic() + build.timeout_minutes * 60
        with self._runner.registry.serve(build.network) as endpoint:
            self.registry_log = endpoint.log
            commands = _Commands(
                self._sandbox, self._runner.endpoint_url, endpoint, _Downloads(), deadline
            )
            self._commands = commands
            shell = _Shell(environment, commands.table(), build.log.append)
            status = self._run_phases(spec, shell)
        self._end(status, finalize_only=status == TIMED_OUT)

    def abandon(self, reason: str) -> None:
        """Ends a build the emulation cannot run, without an event: the emulation failed."""
        build = self._build
        build.write_log(f"(emulation) {reason}")
        if not build.phases[-1].status:
            build.phases[-1].end(FAILED, ("CLIENT_ERROR", reason))
        build.finish(FAILED)

    def report(self) -> dict[str, Any] | None:
        reports = self._commands.reports if self._commands else []
        for path in reversed(reports):
            if path.is_file():
                document: dict[str, Any] = json.loads(path.read_text())
                return document
        return None

    def _run_phases(self, spec: Buildspec, shell: _Shell) -> str:
        """Runs the phases as CodeBuild does: a failed install or pre_build ends the build, a
        failed build still runs post_build, a timeout ends the build at once."""
        build = self._build
        failed = False
        for name in BUILDSPEC_PHASES:
            phase = build.enter(name.upper())
            if name == "install":
                self._select_runtimes(spec)
            outcome = self._run_commands(spec.phases.get(name, ()), shell, phase)
            if name == "build" and self._time_out and outcome != TIMED_OUT:
                phase.end(TIMED_OUT, _TIMED_OUT_CONTEXT)
                outcome = TIMED_OUT
            build.write_log(f"Phase complete: {phase.phase_type} State: {phase.status}")
            if outcome == TIMED_OUT:
                return TIMED_OUT
            if outcome == FAILED:
                failed = True
                shell.variables["CODEBUILD_BUILD_SUCCEEDING"] = "0"
                if name in ("install", "pre_build"):
                    return FAILED
        return FAILED if failed else SUCCEEDED

    def _run_commands(self, commands: Sequence[str], shell: _Shell, phase: _Phase) -> str:
        build = self._build
        for command in commands:
            build.write_log(f"Running command {command}")
            try:
                status = shell.run(command)
            except _DeadlinePassed:
                phase.end(TIMED_OUT, _TIMED_OUT_CONTEXT)
                return TIMED_OUT
            if status != 0:
                message = f"Error while executing command: {command}. Reason: exit status {status}"
                build.write_log(f"Command did not exit successfully {command} exit status {status}")
                phase.end(FAILED, ("COMMAND_EXECUTION_ERROR", message))
                build.write_log(
                    f"Phase context status code: COMMAND_EXECUTION_ERROR Message: {message}"
                )
                return FAILED
        phase.end(SUCCEEDED)
        return SUCCEEDED

    def _select_runtimes(self, spec: Buildspec) -> None:
        for runtime, version in spec.runtime_versions.items():
            self._build.write_log(
                f"Selecting '{runtime}' runtime version '{version}' based on manual selections..."
                f" (the emulation runs Python {sys.version.split()[0]})"
            )

    def _environment(self, spec: Buildspec) -> dict[str, str]:
        build = self._build
        not_plain = [
            v["name"] for v in build.variables if v.get("type", "PLAINTEXT") != "PLAINTEXT"
        ]
        if not_plain:
            raise BuildspecNotEmulated(
                f"PARAMETER_STORE and SECRETS_MANAGER variables ({', '.join(not_plain)}) are "
                "not emulated"
            )
        # Lowest to highest precedence: the image's, the buildspec's, the project's, StartBuild's
        # overrides; the CODEBUILD_ variables cannot be overridden.
        return {
            "AWS_REGION": build.region,
            "AWS_DEFAULT_REGION": build.region,
            "HOME": CONTAINER_HOME,
            "PATH": CONTAINER_PATH,
            **spec.variables,
            **{v["name"]: v["value"] for v in build.variables},
            **self._codebuild_variables(),
        }

    def _codebuild_variables(self) -> dict[str, str]:
        build = self._build
        return {
            "CODEBUILD_BUILD_ARN": build.arn,
            "CODEBUILD_BUILD_ID": build.build_id,
            "CODEBUILD_BUILD_IMAGE": str(build.environment.get("image", "")),
            "CODEBUILD_BUILD_NUMBER": str(build.number),
            "CODEBUILD_BUILD_SUCCEEDING": "1",
            "CODEBUILD_INITIATOR": build.initiator,
            "CODEBUILD_LOG_PATH": build.log_stream,
            "CODEBUILD_SRC_DIR": self._sandbox.working_directory,
            "CODEBUILD_START_TIME": str(int(build.started.timestamp() * 1000)),
        }

    def _phase_succeeded(self, phase_type: str) -> None:
        self._build.enter(phase_type).end(SUCCEEDED)

    def _end(self, status: str, *, finalize_only: bool) -> None:
        build = self._build
        if not finalize_only:
            self._phase_succeeded("UPLOAD_ARTIFACTS")
        self._phase_succeeded("FINALIZING")
        build.finish(status)
        build.write_log(f"Build {build.build_id} ended: {status}")
