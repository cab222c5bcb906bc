"""Reconcile ECR's pull-through cache rules and the state table with the configuration.

`plan_sync` compares what the configuration wants with what ECR and the table hold and returns
the changes, touching nothing. `apply_sync_plan` carries them out. The plan is recomputed from
the real state on every run, so running twice changes nothing the second time, and two runs at
once converge: every write is either conditional or tolerant of the other run's write.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from cache_pilot.aws.events import request_warmup
from cache_pilot.aws.parameters import read_config_sources
from cache_pilot.aws.rules import (
    EcrRule,
    RuleAlreadyExists,
    RuleOperationError,
    SecretNotFound,
    create_rule,
    credential_matches,
    delete_rule,
    describe_rule,
    describe_rules,
    resolve_secret_arn,
    update_rule_authentication,
    validate_rule,
)
from cache_pilot.config import (
    CacheConfig,
    CachedImage,
    CacheRule,
    ConfigurationAbsent,
    ConfigurationError,
    ValidationContext,
    load_config,
)
from cache_pilot.state import ImageRecord, ImageStatus, RuleRecord, RuleValidation, utc_now

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from cache_pilot.aws.clients import AwsClients
    from cache_pilot.aws.state_table import StateTable


class RuleAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"  # credential or role only: ECR updates nothing else in place
    REPLACE = "replace"  # another upstream: delete and create
    DELETE = "delete"
    FORGET = "forget"  # our rule is already gone from ECR; drop the ownership record


class ImageAction(StrEnum):
    LIST = "list"  # new: PENDING
    RELIST = "relist"  # RETIRED and listed again: PENDING
    UPDATE = "update"  # other platforms, max age or rule
    RETIRE = "retire"


class RuleChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: RuleAction
    prefix: str
    wanted: CacheRule | None = None
    held: EcrRule | None = None
    reason: str


class RuleConflict(BaseModel):
    """A rule under a configured prefix that cache-pilot did not create: left alone."""

    model_config = ConfigDict(frozen=True)

    prefix: str
    held: EcrRule
    matches_configuration: bool

    def __str__(self) -> str:
        verdict = (
            "matches the configuration"
            if self.matches_configuration
            else f"points at {self.held.upstream_url}, not at what the configuration says"
        )
        return (
            f"rule '{self.prefix}' was not created by cache-pilot and {verdict}; left alone "
            "(delete it in ECR to let cache-pilot manage the prefix)"
        )


class ImageChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: ImageAction
    reference: str
    image: CachedImage | None = None


class SyncPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_changes: tuple[RuleChange, ...] = ()
    conflicts: tuple[RuleConflict, ...] = ()
    image_changes: tuple[ImageChange, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.rule_changes and not self.image_changes


class RuleOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    change: RuleChange
    succeeded: bool
    error: str | None = None
    validation: RuleValidation | None = None


class SyncReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan: SyncPlan
    rule_outcomes: tuple[RuleOutcome, ...]
    images_changed: int

    @property
    def failures(self) -> tuple[RuleOutcome, ...]:
        return tuple(outcome for outcome in self.rule_outcomes if not outcome.succeeded)

    @property
    def pending_images(self) -> tuple[str, ...]:
        return tuple(
            change.reference
            for change in self.plan.image_changes
            if change.action in (ImageAction.LIST, ImageAction.RELIST)
        )


# --- planning ---------------------------------------------------------------------------------


def is_owned(record: RuleRecord | None, held: EcrRule) -> bool:
    """A rule is ours when we recorded it and ECR's creation time is the one we saw."""
    if record is None:
        return False
    return (
        record.created_at is None or held.created_at is None or record.created_at == held.created_at
    )


def _same_upstream(wanted: CacheRule, held: EcrRule) -> bool:
    return (
        wanted.upstream_url == held.upstream_url
        and (held.upstream_registry in (None, wanted.upstream_registry))
        and wanted.upstream_prefix == held.upstream_prefix
    )


def _same_authentication(wanted: CacheRule, held: EcrRule) -> bool:
    return credential_matches(wanted.credential, held.credential_arn) and (
        wanted.custom_role_arn == held.custom_role_arn
    )


def plan_rules(
    config: CacheConfig,
    held_rules: dict[str, EcrRule],
    records: dict[str, RuleRecord],
) -> tuple[list[RuleChange], list[RuleConflict]]:
    changes: list[RuleChange] = []
    conflicts: list[RuleConflict] = []
    wanted_prefixes = {rule.prefix for rule in config.rules}
    for wanted in config.rules:
        held = held_rules.get(wanted.prefix)
        if held is None:
            changes.append(
                RuleChange(
                    action=RuleAction.CREATE,
                    prefix=wanted.prefix,
                    wanted=wanted,
                    reason="not in ECR",
                )
            )
        elif not is_owned(records.get(wanted.prefix), held):
            conflicts.append(
                RuleConflict(
                    prefix=wanted.prefix,
                    held=held,
                    matches_configuration=_same_upstream(wanted, held)
                    and _same_authentication(wanted, held),
                )
            )
        elif not _same_upstream(wanted, held):
            changes.append(
                RuleChange(
                    action=RuleAction.REPLACE,
                    prefix=wanted.prefix,
                    wanted=wanted,
                    held=held,
                    reason=f"upstream {held.upstream_url} -> {wanted.upstream_url}",
                )
            )
        elif not _same_authentication(wanted, held):
            changes.append(
                RuleChange(
                    action=RuleAction.UPDATE,
                    prefix=wanted.prefix,
                    wanted=wanted,
                    held=held,
                    reason="credential or role changed",
                )
            )
    for prefix, record in sorted(records.items()):
        if prefix in wanted_prefixes:
            continue
        held = held_rules.get(prefix)
        if held is None:
            changes.append(
                RuleChange(action=RuleAction.FORGET, prefix=prefix, reason="already gone from ECR")
            )
        elif is_owned(record, held):
            changes.append(
                RuleChange(
                    action=RuleAction.DELETE,
                    prefix=prefix,
                    held=held,
                    reason="no longer configured",
                )
            )
        else:
            # Someone replaced our rule with their own: it is theirs now.
            changes.append(
                RuleChange(
                    action=RuleAction.FORGET,
                    prefix=prefix,
                    reason="replaced by a rule cache-pilot did not create",
                )
            )
    return changes, conflicts


def plan_images(config: CacheConfig, records: dict[str, ImageRecord]) -> list[ImageChange]:
    changes: list[ImageChange] = []
    for image in config.images:
        record = records.get(image.reference)
        if record is None:
            changes.append(
                ImageChange(action=ImageAction.LIST, reference=image.reference, image=image)
            )
        elif record.status is ImageStatus.RETIRED:
            changes.append(
                ImageChange(action=ImageAction.RELIST, reference=image.reference, image=image)
            )
        elif (record.platforms, record.max_age_seconds, record.rule_prefix) != (
            image.platforms,
            image.max_age_seconds,
            image.rule_prefix,
        ):
            changes.append(
                ImageChange(action=ImageAction.UPDATE, reference=image.reference, image=image)
            )
    listed = {image.reference for image in config.images}
    changes.extend(
        ImageChange(action=ImageAction.RETIRE, reference=reference)
        for reference, record in sorted(records.items())
        if reference not in listed and record.status is not ImageStatus.RETIRED
    )
    return changes


def plan_sync(
    config: CacheConfig,
    held_rules: dict[str, EcrRule],
    rule_records: dict[str, RuleRecord],
    image_records: dict[str, ImageRecord],
) -> SyncPlan:
    rule_changes, conflicts = plan_rules(config, held_rules, rule_records)
    return SyncPlan(
        rule_changes=tuple(rule_changes),
        conflicts=tuple(conflicts),
        image_changes=tuple(plan_images(config, image_records)),
    )


# --- applying ---------------------------------------------------------------------------------


class RuleApplier:
    """Carries out rule changes; only ever on rules cache-pilot owns."""

    def __init__(
        self,
        ecr: ECRClient,
        secretsmanager: SecretsManagerClient,
        table: StateTable,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._ecr = ecr
        self._secrets = secretsmanager
        self._table = table
        self._clock = clock

    def apply(self, change: RuleChange) -> RuleOutcome:
        try:
            validation = self._apply(change)
        except (RuleOperationError, SecretNotFound) as exc:
            return RuleOutcome(change=change, succeeded=False, error=str(exc))
        return RuleOutcome(change=change, succeeded=True, validation=validation)

    def _apply(self, change: RuleChange) -> RuleValidation | None:
        match change.action:
            case RuleAction.CREATE:
                assert change.wanted is not None
                return self._create(change.wanted)
            case RuleAction.REPLACE:
                assert change.wanted is not None
                delete_rule(self._ecr, change.prefix)
                return self._create(change.wanted)
            case RuleAction.UPDATE:
                assert change.wanted is not None
                return self._update(change.wanted)
            case RuleAction.DELETE:
                delete_rule(self._ecr, change.prefix)
                self._table.forget_rule(change.prefix)
                return None
            case RuleAction.FORGET:
                self._table.forget_rule(change.prefix)
                return None

    def _to_ecr(self, wanted: CacheRule) -> EcrRule:
        return EcrRule(
            prefix=wanted.prefix,
            upstream_registry=wanted.upstream_registry,
            upstream_url=wanted.upstream_url,
            upstream_prefix=wanted.upstream_prefix,
            credential_arn=resolve_secret_arn(self._secrets, wanted.credential)
            if wanted.credential
            else None,
            custom_role_arn=wanted.custom_role_arn,
        )

    def _record(self, rule: EcrRule, validation: RuleValidation | None = None) -> RuleRecord:
        record = RuleRecord(
            prefix=rule.prefix,
            upstream_registry=rule.upstream_registry or "",
            upstream_url=rule.upstream_url,
            upstream_prefix=rule.upstream_prefix,
            credential_arn=rule.credential_arn,
            custom_role_arn=rule.custom_role_arn,
            created_at=rule.created_at,
            validation=validation,
            recorded_at=self._clock(),
        )
        self._table.record_rule(record)
        return record

    def _create(self, wanted: CacheRule) -> RuleValidation | None:
        rule = self._to_ecr(wanted)
        # Claim the prefix before the rule exists, so no crash can leave a rule that looks foreign.
        self._record(rule)
        try:
            created = create_rule(self._ecr, rule)
        except RuleAlreadyExists:
            # A concurrent run of ours created it between our plan and now.
            held = describe_rule(self._ecr, rule.prefix)
            created = held if held is not None else rule
        except RuleOperationError:
            self._table.forget_rule(rule.prefix)
            raise
        return self._validate(created, wanted)

    def _update(self, wanted: CacheRule) -> RuleValidation | None:
        rule = self._to_ecr(wanted)
        update_rule_authentication(self._ecr, rule)
        held = describe_rule(self._ecr, rule.prefix)
        return self._validate(held or rule, wanted)

    def _validate(self, rule: EcrRule, wanted: CacheRule) -> RuleValidation | None:
        validation = None
        if wanted.authenticated:
            is_valid, failure = validate_rule(self._ecr, rule.prefix)
            validation = RuleValidation(
                is_valid=is_valid, failure=failure, validated_at=self._clock()
            )
        self._record(rule, validation)
        return validation


class ImageApplier:
    def __init__(self, table: StateTable, clock: Callable[[], datetime] = utc_now) -> None:
        self._table = table
        self._clock = clock

    def apply(self, change: ImageChange) -> bool:
        now = self._clock()
        image = change.image
        match change.action:
            case ImageAction.LIST | ImageAction.RELIST:
                assert image is not None
                return self._table.list_image(pending_record(image, now))
            case ImageAction.UPDATE:
                assert image is not None
                return self._table.update_image_settings(
                    image.reference, image.rule_prefix, image.platforms, image.max_age_seconds, now
                )
            case ImageAction.RETIRE:
                return self._table.retire_image(change.reference, now)


def pending_record(image: CachedImage, now: datetime) -> ImageRecord:
    return ImageRecord(
        reference=image.reference,
        repository=image.repository,
        tag=image.tag,
        pinned_digest=image.digest,
        rule_prefix=image.rule_prefix,
        platforms=image.platforms,
        max_age_seconds=image.max_age_seconds,
        status=ImageStatus.PENDING,
        listed_at=now,
        updated_at=now,
    )


IMAGE_WRITE_CONCURRENCY = 8


def apply_sync_plan(plan: SyncPlan, rules: RuleApplier, images: ImageApplier) -> SyncReport:
    # Rules first: a rule must exist before its images can be warmed through it.
    outcomes = tuple(rules.apply(change) for change in plan.rule_changes)
    with ThreadPoolExecutor(max_workers=IMAGE_WRITE_CONCURRENCY) as pool:
        changed = sum(pool.map(images.apply, plan.image_changes))
    return SyncReport(plan=plan, rule_outcomes=outcomes, images_changed=changed)


# --- the use case -----------------------------------------------------------------------------


class SyncStatus(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    PLANNED = "planned"  # a dry run: the plan, nothing changed
    INVALID = "invalid"  # the configuration failed validation: nothing changed
    ABSENT = "absent"  # no parameter under the path: nothing changed


class SyncResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: SyncStatus
    problems: tuple[str, ...] = ()
    plan: SyncPlan | None = None
    report: SyncReport | None = None
    images_waiting: int = 0  # PENDING or STALE (and FAILED on a schedule) after the sync
    warmup_requested: bool = False


WarmupRequester = Callable[[str, bool], None]  # (reason, retry_failed)


def images_waiting(records: dict[str, ImageRecord], plan: SyncPlan, include_failed: bool) -> int:
    """How many images a warm-up would take once the plan is applied."""
    waiting_statuses = {ImageStatus.PENDING, ImageStatus.STALE}
    if include_failed:
        waiting_statuses.add(ImageStatus.FAILED)
    retired = {c.reference for c in plan.image_changes if c.action is ImageAction.RETIRE}
    listed = {
        c.reference
        for c in plan.image_changes
        if c.action in (ImageAction.LIST, ImageAction.RELIST)
    }
    already = {
        reference
        for reference, record in records.items()
        if record.status in waiting_statuses and reference not in retired
    }
    return len(listed | already)


def synchronize(
    clients: AwsClients,
    config_path: str,
    table: StateTable,
    context: ValidationContext,
    *,
    dry_run: bool = False,
    clock: Callable[[], datetime] = utc_now,
    request_warmup: WarmupRequester | None = None,
    scheduled: bool = False,
) -> SyncResult:
    """Read the configuration, plan against ECR and the table, and apply unless a dry run.

    When images wait for a warm-up afterwards, one warm-up is requested; a scheduled run
    also retries the images whose last warm-up failed, and re-sends a request that was lost.
    """
    try:
        config = load_config(read_config_sources(clients.ssm, config_path), context)
    except ConfigurationAbsent:
        return SyncResult(status=SyncStatus.ABSENT)
    except ConfigurationError as exc:
        return SyncResult(status=SyncStatus.INVALID, problems=tuple(str(p) for p in exc.problems))
    image_records = table.images()
    plan = plan_sync(config, describe_rules(clients.ecr), table.owned_rules(), image_records)
    waiting = images_waiting(image_records, plan, include_failed=scheduled)
    if dry_run:
        return SyncResult(status=SyncStatus.PLANNED, plan=plan, images_waiting=waiting)
    report = None
    if not plan.is_empty:
        report = apply_sync_plan(
            plan,
            RuleApplier(clients.ecr, clients.secretsmanager, table, clock),
            ImageApplier(table, clock),
        )
    requested = False
    if waiting and request_warmup is not None:
        request_warmup("schedule" if scheduled else "configuration changed", scheduled)
        requested = True
    return SyncResult(
        status=SyncStatus.UNCHANGED if plan.is_empty else SyncStatus.APPLIED,
        plan=plan,
        report=report,
        images_waiting=waiting,
        warmup_requested=requested,
    )


def warmup_requester(clients: AwsClients, event_source: str | None) -> WarmupRequester | None:
    """Send warm-up requests as `event_source`; None where no warm-up stack listens."""
    if event_source is None:
        return None
    source = event_source

    def request(reason: str, retry_failed: bool) -> None:
        request_warmup(clients.events, source, reason, retry_failed)

    return request
