"""`cache-pilot plan` and `cache-pilot sync`: the code sync_config runs, from a terminal."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.state_table import StateTable
from cache_pilot.config import ValidationContext
from cache_pilot.paths import normalize_path
from cache_pilot.reporting import sync_summary
from cache_pilot.sync import SyncResult, SyncStatus, synchronize, warmup_requester
from cache_pilot_cli.output import Output, aws_failure
from cache_pilot_cli.render import plan_summary, render_conflicts, render_plan, render_report

DEFAULT_CONFIG_PATH = "/cache-pilot/"
DEFAULT_STATE_TABLE = "cache-pilot-state"  # what `cache-pilot local up` creates


class AwsUnreachable(Exception):
    """No Region, no credentials, or STS did not answer: nothing was planned."""


def validation_context(clients: AwsClients) -> ValidationContext:
    """The account and Region the rules will live in: credential ARNs must be of these."""
    try:
        region = clients.region
        account = clients.sts.get_caller_identity()["Account"]
    except (RuntimeError, BotoCoreError, ClientError) as exc:
        raise AwsUnreachable(str(exc)) from exc
    return ValidationContext(account_id=account, region=region)


def reconcile(
    clients: AwsClients,
    config_path: str,
    table_name: str,
    output: Output,
    *,
    apply: bool,
    as_json: bool = False,
    event_source: str | None = None,
) -> int:
    """Plan (apply=False: nothing changes) or apply the configuration; exit status 1 when it
    is invalid, a rule change failed, or AWS cannot be reached."""
    command = "sync" if apply else "plan"
    try:
        context = validation_context(clients)
        result = synchronize(
            clients,
            config_path,
            StateTable(clients.dynamodb, table_name),
            context,
            dry_run=not apply,
            request_warmup=warmup_requester(clients, event_source),
        )
    except (AwsUnreachable, BotoCoreError, ClientError) as exc:
        output.error(f"cache-pilot {command}: {aws_failure(exc, table_name)}")
        return 1
    if as_json:
        output.json(sync_summary(result))
    else:
        _render(output, result, normalize_path(config_path), table_name, context, clients)
    failed = result.report is not None and bool(result.report.failures)
    return 1 if result.status is SyncStatus.INVALID or failed else 0


def _render(
    output: Output,
    result: SyncResult,
    config_path: str,
    table_name: str,
    context: ValidationContext,
    clients: AwsClients,
) -> None:
    match result.status:
        case SyncStatus.INVALID:
            # Only the problems on stdout, one a line, as `validate` prints them.
            for problem in result.problems:
                output.line(problem)
            output.error(
                f"the configuration under {config_path} is invalid "
                f"({len(result.problems)} problem{'' if len(result.problems) == 1 else 's'}); "
                "nothing was changed"
            )
            return
        case SyncStatus.ABSENT:
            output.warning(
                f"No parameter under {config_path}: nothing was changed, and nothing is deleted "
                "when the configuration is missing. To remove every rule cache-pilot manages, "
                "write a document that says 'rules: []'."
            )
            return
        case _:
            pass
    output.line(
        f"{config_path} -> ECR {clients.ecr.meta.endpoint_url} and state table {table_name} "
        f"(account {context.account_id}, {context.region})",
        style="dim",
    )
    assert result.plan is not None  # every other status carries its plan
    plan = result.plan
    if plan.is_empty:
        render_conflicts(output, plan)
        output.blank()
        output.line("Nothing to change: ECR and the state table match the configuration.")
        return
    if result.report is None:
        render_plan(output, plan)
        output.blank()
        output.line(
            f"Plan: {plan_summary(plan)}. Nothing was changed; `cache-pilot sync` applies it.",
            style="bold",
        )
        return
    report = result.report
    render_report(output, report)
    output.blank()
    failed = len(report.failures)
    succeeded = len(report.rule_outcomes) - failed
    output.line(
        f"Applied: {succeeded} of {len(report.rule_outcomes)} rule changes; "
        f"{report.images_changed} image items written, {len(report.pending_images)} of them "
        "newly PENDING a warm-up.",
        style="bold" if not failed else "bold red",
    )
    if failed:
        for outcome in report.failures:
            output.error(f"failed: {outcome.error}")
        output.error(f"{failed} rule change(s) failed; fix the cause and run `cache-pilot sync`")
