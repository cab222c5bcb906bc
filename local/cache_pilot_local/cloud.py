"""The local cloud: the embedded AWS with template.yaml deployed, its events routed to its
functions, its warm-up builds run against an emulated upstream. One harness for the demo,
`cache-pilot local up` and the end-to-end tests.

    with local_cloud() as cloud:
        cloud.client("ssm").put_parameter(...)   # what a user does
        activity = cloud.settle()                # what the stack does about it
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cache_pilot_local.builds import BuildRunner, FinishedBuild
from cache_pilot_local.deploy import STACK_NAME, DeployedStack, deploy_stack
from cache_pilot_local.event_routing import (
    QUIET_FUNCTIONS,
    EventRouter,
    Invocation,
    Schedule,
    fire_schedules,
)
from cache_pilot_local.registry import PullResult, PullThroughRegistry
from cache_pilot_local.server import EmbeddedAws, start_embedded_aws
from cache_pilot_local.template import TEMPLATE_PATH
from cache_pilot_local.upstream import UpstreamCatalog

DEMO_NETWORK = {"CreateDemoNetwork": "true"}
# Rounds of "deliver every event, run every queued build" before settle() gives up: a cycle
# that keeps producing work (a function that re-requests forever) is a bug to report.
MAX_SETTLE_ROUNDS = 25


class UnsettledError(Exception):
    """Events or builds kept coming after MAX_SETTLE_ROUNDS rounds."""


@dataclass
class Activity:
    """What the stack did in reaction: function invocations and finished builds, in order."""

    invocations: list[Invocation] = field(default_factory=list)
    builds: list[FinishedBuild] = field(default_factory=list)

    def of(self, function: str) -> list[Invocation]:
        return [i for i in self.invocations if i.function == function]

    @property
    def errors(self) -> list[Invocation]:
        return [i for i in self.invocations if i.error]


class LocalCloud:
    def __init__(
        self,
        aws: EmbeddedAws,
        stack: DeployedStack,
        router: EventRouter,
        builds: BuildRunner,
        on_build: Callable[[FinishedBuild], None] | None = None,
    ) -> None:
        self.aws = aws
        self.stack = stack
        self.router = router
        self.builds = builds
        self._on_build = on_build
        self._settling = threading.Lock()

    @property
    def upstream(self) -> UpstreamCatalog:
        return self.builds.catalog

    @property
    def registry(self) -> PullThroughRegistry:
        return self.builds.registry

    def client(self, service: str) -> Any:
        return self.aws.session().client(service, endpoint_url=self.aws.endpoint_url)  # type: ignore[call-overload]

    def settle(self) -> Activity:
        """Deliver events and run builds until neither is left; what happened, in order."""
        activity = Activity()
        with self._settling:
            for _ in range(MAX_SETTLE_ROUNDS):
                invocations = self.router.deliver_pending()
                builds = self.builds.run_pending()
                for build in builds:
                    if self._on_build:
                        self._on_build(build)
                activity.invocations.extend(invocations)
                activity.builds.extend(builds)
                if not invocations and not builds:
                    return activity
        raise UnsettledError(
            f"still busy after {MAX_SETTLE_ROUNDS} rounds: "
            f"{len(activity.invocations)} invocations, {len(activity.builds)} builds"
        )

    def tick(self, *schedules: str) -> tuple[list[Schedule], Activity]:
        """Fire the named schedules (all when none is named), then settle."""
        fired = fire_schedules(
            self.aws.session(), self.aws.endpoint_url, self.stack.name, schedules
        )
        return fired, self.settle()

    @property
    def warmup_subnets(self) -> list[str]:
        project = self.client("codebuild").batch_get_projects(
            names=[self.stack.physical_id("WarmupProject")]
        )["projects"][0]
        return list(project["vpcConfig"]["subnets"])

    def pull_from_warmup_subnet(self, reference: str) -> PullResult:
        """Pull one image as a workload in the warm-up subnet would (NAT or not)."""
        return self.registry.pull_image(reference, subnet_ids=self.warmup_subnets)


@contextmanager
def local_cloud(
    parameter_overrides: Mapping[str, str] = DEMO_NETWORK,
    *,
    aws: EmbeddedAws | None = None,
    upstream: UpstreamCatalog | None = None,
    deliver_twice: bool = False,
    function_environment: Mapping[str, str] = QUIET_FUNCTIONS,
    on_invocation: Callable[[Invocation], None] | None = None,
    on_build: Callable[[FinishedBuild], None] | None = None,
    template_path: Path = TEMPLATE_PATH,
) -> Iterator[LocalCloud]:
    """Deploy template.yaml into an embedded AWS (a new one unless given) and run it.

    This process's AWS SDK points at the embedded AWS while the block runs, as the functions
    that run in it expect.
    """
    embedded = aws or start_embedded_aws()
    try:
        with embedded.as_process_environment():
            stack = deploy_stack(embedded, parameter_overrides, STACK_NAME, template_path)
            router = EventRouter(
                embedded,
                stack,
                deliver_twice=deliver_twice,
                function_environment=function_environment,
                on_invocation=on_invocation,
            )
            with BuildRunner(
                embedded.endpoint_url,
                embedded.region,
                stack.template.account_id,
                upstream or UpstreamCatalog.default(),
            ) as builds:
                yield LocalCloud(embedded, stack, router, builds, on_build)
    finally:
        if aws is None:
            embedded.stop()
