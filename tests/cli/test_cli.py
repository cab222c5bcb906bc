"""The operator's command, run in-process as the console script runs it: `validate` offline,
`plan` and `sync` against moto with the pull-through cache emulation, `local up` against the
embedded AWS it starts, and `local demo` end to end."""

from __future__ import annotations

import json
import os
import re
import socket
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.state_table import StateTable
from cache_pilot_local.server import (
    EmbeddedAws,
    EmbeddedAwsError,
    create_stack_resources,
    start_embedded_aws,
)
from cache_pilot_local.template import StackTemplate
from tests.cli.conftest import Cli
from tests.conftest import ACCOUNT, CONFIG_PATH, DESIGN_EXAMPLE, REGION, TABLE_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"

DESIGN_IMAGES = {
    "ecr-public/amazonlinux/amazonlinux:latest",
    "docker-hub/library/nginx:1.27",
    "k8s/pause:3.10",
}
RULES_ONLY = "rules:\n  - prefix: k8s\n    upstream: k8s\n"


# --- validate -----------------------------------------------------------------------------------

VALIDATE_CASES = [
    pytest.param(
        {"config.yaml": DESIGN_EXAMPLE},
        0,
        ["valid: 3 rules, 3 images in 1 file"],
        id="the design's example",
    ),
    pytest.param(
        {
            "config.yaml": RULES_ONLY,
            "images.list": "k8s/pause:3.10\nk8s/coredns/coredns:v1.11.3, k8s/kube-proxy:v1.31.2\n",
        },
        0,
        ["valid: 1 rule, 3 images in 2 files"],
        id="a .list file, newline- and comma-separated",
    ),
    pytest.param(
        {
            "bad.yaml": textwrap.dedent(
                """\
                rules:
                  - prefix: docker-hub
                    upstream: docker-hub
                  - prefix: k8s
                    upstream: registry.k8s.io
                images:
                  - image: k8s/pause:3.10
                    max_age: 3 days
                """
            )
        },
        1,
        [
            "bad.yaml: rules[0] 'docker-hub' (line 2): upstream 'docker-hub' needs a credential; add 'credential: ecr-pullthroughcache/docker-hub' naming a Secrets Manager secret that holds JSON with username and accessToken",
            "bad.yaml: images[0] 'k8s/pause:3.10' (line 7): max_age '3 days' is not a duration; write a whole number and a unit h, d or w, e.g. 12h, 7d or 2w",
        ],
        id="every problem of a document, one line each",
    ),
    pytest.param(
        {
            "config.yaml": "rules: [{prefix: docker-hub, upstream: docker-hub, credential: ecr-pullthroughcache/hub}]\nimages: [docker-hub/nginx:1.27]\n"
        },
        1,
        [
            "config.yaml: images[0] 'docker-hub/nginx:1.27' (line 2): Docker Hub official images live under 'library/'; write 'docker-hub/library/nginx:1.27' instead of 'docker-hub/nginx:1.27'"
        ],
        id="a Docker Hub official image without library/",
    ),
    pytest.param(
        {"config.yaml": RULES_ONLY, "images.list": "k8s/pause:3.10,K8s/Pause:3.10\n"},
        1,
        [
            "images.list: item 2 'K8s/Pause:3.10': 'K8s/Pause:3.10' is not an image reference (repository names are lowercase); write <prefix>/<repository>:<tag>, e.g. 'ecr-public/nginx/nginx:1.27'"
        ],
        id="a bad item of a .list file",
    ),
    pytest.param(
        {"broken.yaml": "rules: [\n  - prefix: k8s\n"},
        1,
        [
            "broken.yaml: line 2, column 3: not valid YAML or JSON (expected the node content, but found '-'); fix the syntax there"
        ],
        id="unparseable YAML, with its line",
    ),
]


@pytest.mark.parametrize(("files", "exit_code", "lines"), VALIDATE_CASES)
def test_validate_prints_a_summary_or_one_line_per_problem(
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    exit_code: int,
    lines: list[str],
) -> None:
    # Given configuration files, named on the command line as relative paths
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    # When they are validated
    run = cli("validate", *files)
    # Then the exit status and stdout are exactly the verdict: a summary, or the problems
    assert run.exit_code == exit_code
    assert run.lines == lines
    assert run.stderr == ""


def test_validate_accepts_the_shipped_examples(cli: Cli) -> None:
    run = cli("validate", str(EXAMPLES / "config.yaml"), str(EXAMPLES / "more-images.list"))
    assert (run.exit_code, run.lines) == (0, ["valid: 3 rules, 5 images in 2 files"])


def test_validate_reports_an_unreadable_file_and_validates_nothing(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one readable document and one name that is no file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(RULES_ONLY)
    # When both are validated
    run = cli("validate", "config.yaml", "missing.yaml")
    # Then the command fails naming the file, and prints no verdict on the rest
    assert run.exit_code == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        "cache-pilot validate: cannot read missing.yaml: No such file or directory"
    ]


# --- plan and sync (moto, in-process) -------------------------------------------------------


@pytest.fixture
def hub_secret_arn(clients: AwsClients) -> str:
    return clients.secretsmanager.create_secret(
        Name="ecr-pullthroughcache/docker-hub",
        SecretString=json.dumps({"username": "platform-bot", "accessToken": "dckr_pat_example"}),
    )["ARN"]


def put_config(clients: AwsClients, text: str, name: str = CONFIG_PATH + "config") -> None:
    clients.ssm.put_parameter(Name=name, Value=text, Type="String", Overwrite=True)


def ecr_rules(clients: AwsClients) -> dict[str, dict[str, Any]]:
    rules = clients.ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    return {rule["ecrRepositoryPrefix"]: dict(rule) for rule in rules}


def statuses(table: StateTable) -> dict[str, str]:
    return {reference: record.status.value for reference, record in table.images().items()}


def listed_rows(stdout: str, action: str) -> set[str]:
    """The second column of the plan rows of one action: prefixes or image references."""
    return set(re.findall(rf"^\s+{action}\s+(\S+)", stdout, flags=re.MULTILINE))


def test_plan_shows_the_creates_and_changes_nothing(
    cli: Cli, clients: AwsClients, state_table: StateTable, hub_secret_arn: str
) -> None:
    # Given the design's example in Parameter Store, and an empty ECR and state table
    put_config(clients, DESIGN_EXAMPLE)
    # When the operator plans
    run = cli("plan")
    # Then every rule and image is shown as a create, with the account and Region checked
    assert run.exit_code == 0
    assert listed_rows(run.stdout, "create") == {"ecr-public", "docker-hub", "k8s"}
    assert listed_rows(run.stdout, "list") == DESIGN_IMAGES
    assert f"(account {ACCOUNT}, {REGION})" in run.stdout
    assert "Plan: create 3 rules; list 3 images. Nothing was changed" in run.stdout
    # And nothing was changed: no rule in ECR, no item in the table
    assert ecr_rules(clients) == {}
    assert state_table.images() == {}
    assert state_table.owned_rules() == {}


def test_plan_json_is_the_summary_sync_config_returns(
    cli: Cli, clients: AwsClients, state_table: StateTable, hub_secret_arn: str
) -> None:
    put_config(clients, DESIGN_EXAMPLE)
    run = cli("plan", "--json")
    summary = json.loads(run.stdout)
    assert run.exit_code == 0
    assert summary["status"] == "planned"
    assert [(c["action"], c["prefix"]) for c in summary["rule_changes"]] == [
        ("create", "ecr-public"),
        ("create", "docker-hub"),
        ("create", "k8s"),
    ]
    assert summary["image_changes"]["list"] == 3
    assert ecr_rules(clients) == {}


def test_plan_of_an_invalid_configuration_prints_only_the_problems(
    cli: Cli, clients: AwsClients, state_table: StateTable
) -> None:
    put_config(clients, "rules:\n  - {prefix: k8s, upstream: k8s}\nimages:\n  - quay/app:1\n")
    run = cli("plan")
    assert run.exit_code == 1
    assert run.lines == [
        "/cache-pilot/config: images[0] 'quay/app:1' (line 4): 'quay/app:1' matches no rule's prefix (prefixes: k8s); start it with a rule's prefix, as in '<prefix>/<repository>:<tag>', or add a rule"
    ]
    assert "nothing was changed" in run.stderr


def test_sync_creates_the_rules_and_pending_items(
    cli: Cli, clients: AwsClients, state_table: StateTable, hub_secret_arn: str
) -> None:
    # Given the design's example in Parameter Store
    put_config(clients, DESIGN_EXAMPLE)
    # When the operator syncs
    run = cli("sync")
    # Then ECR has the three rules, the authenticated one with the secret's full ARN
    assert run.exit_code == 0, run.stderr
    rules = ecr_rules(clients)
    assert {prefix: rule["upstreamRegistryUrl"] for prefix, rule in rules.items()} == {
        "ecr-public": "public.ecr.aws",
        "docker-hub": "registry-1.docker.io",
        "k8s": "registry.k8s.io",
    }
    assert rules["docker-hub"]["credentialArn"] == hub_secret_arn
    assert set(state_table.owned_rules()) == {"ecr-public", "docker-hub", "k8s"}
    # And every image is a PENDING item
    assert statuses(state_table) == dict.fromkeys(DESIGN_IMAGES, "PENDING")
    # And the report says so, with ECR's validation of the authenticated rule
    assert "Applied: 3 of 3 rule changes; 3 image items written, 3 of them newly PENDING" in (
        run.stdout
    )
    assert re.search(r"create\s+docker-hub\s.*done; ECR validated it", run.stdout)
    # When the operator syncs again, Then there is nothing left to do
    again = cli("sync")
    assert again.exit_code == 0
    assert "Nothing to change: ECR and the state table match the configuration." in again.stdout
    assert ecr_rules(clients) == rules


def test_sync_exits_1_when_a_rule_change_fails(
    cli: Cli, clients: AwsClients, state_table: StateTable
) -> None:
    # Given a configuration whose Docker Hub secret does not exist
    put_config(clients, DESIGN_EXAMPLE)
    # When the operator syncs
    run = cli("sync")
    # Then the other rules are created, but the command fails so a pipeline notices
    assert run.exit_code == 1
    assert set(ecr_rules(clients)) == {"ecr-public", "k8s"}
    assert run.stderr.splitlines() == [
        "failed: secret 'ecr-pullthroughcache/docker-hub' does not exist in this account and "
        "Region; create it with JSON keys username and accessToken",
        "1 rule change(s) failed; fix the cause and run `cache-pilot sync`",
    ]


def test_sync_with_an_event_source_requests_a_warmup_as_the_stack_does(
    cli: Cli, clients: AwsClients, state_table: StateTable, hub_secret_arn: str
) -> None:
    # Given a queue behind a rule that listens for the stack's warm-up requests
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="start-warmup")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": ["cache-pilot.team-a"], "detail-type": ["Warm-up Requested"]}
    clients.events.put_rule(Name="warmup", EventPattern=json.dumps(pattern))
    clients.events.put_targets(Rule="warmup", Targets=[{"Id": "start", "Arn": arn}])
    put_config(clients, DESIGN_EXAMPLE)
    # When the operator syncs with the stack's event source
    run = cli("sync", "--json", "--event-source", "cache-pilot.team-a")
    # Then the new images wait for a warm-up, and one was requested
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["warmup_requested"] is True
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(message["Body"])["detail"] == {
        "reason": "configuration changed",
        "retry_failed": False,
    }


def test_sync_honours_the_path_and_table_options(
    cli: Cli, clients: AwsClients, stack: StackTemplate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a team's configuration under its own path, and its own state table
    create_stack_resources(clients.dynamodb, stack, "team-a-state")
    put_config(clients, "rules: [{prefix: k8s, upstream: k8s}]\nimages: [k8s/pause:3.10]")
    put_config(clients, RULES_ONLY + "images: [k8s/etcd:3.5.15-0]\n", name="/team-a/config")
    monkeypatch.setenv("CACHE_PILOT_STATE_TABLE", "team-a-state")
    # When the operator syncs that path (the table from the environment)
    run = cli("sync", "--config-path", "/team-a")
    # Then the items land in that table, from that path only
    assert run.exit_code == 0, run.stderr
    assert statuses(StateTable(clients.dynamodb, "team-a-state")) == {
        "k8s/etcd:3.5.15-0": "PENDING"
    }


def test_sync_of_rules_empty_list_removes_every_rule(
    cli: Cli, clients: AwsClients, state_table: StateTable, hub_secret_arn: str
) -> None:
    put_config(clients, DESIGN_EXAMPLE)
    cli("sync")
    put_config(clients, "rules: []")
    run = cli("sync")
    assert run.exit_code == 0
    assert listed_rows(run.stdout, "delete") == {"ecr-public", "docker-hub", "k8s"}
    assert ecr_rules(clients) == {}
    assert set(statuses(state_table).values()) == {"RETIRED"}


def test_sync_with_no_parameter_deletes_nothing_and_says_how_to(
    cli: Cli, clients: AwsClients, state_table: StateTable, hub_secret_arn: str
) -> None:
    # Given a synced configuration whose parameters were then all deleted
    put_config(clients, DESIGN_EXAMPLE)
    cli("sync")
    clients.ssm.delete_parameter(Name=CONFIG_PATH + "config")
    # When the operator syncs
    run = cli("sync")
    # Then nothing is deleted, and the warning says that 'rules: []' removes every rule
    assert run.exit_code == 0
    assert "nothing is deleted" in run.stdout
    assert "'rules: []'" in run.stdout
    assert set(ecr_rules(clients)) == {"ecr-public", "docker-hub", "k8s"}
    assert set(statuses(state_table).values()) == {"PENDING"}


def test_sync_against_a_missing_table_says_which_option_to_pass(
    cli: Cli, clients: AwsClients, state_table: StateTable
) -> None:
    put_config(clients, RULES_ONLY)
    run = cli("sync", "--table", "no-such-table")
    assert run.exit_code == 1
    assert "is 'no-such-table' the state table? pass --table" in run.stderr
    assert ecr_rules(clients) == {}


# --- the embedded AWS (local up) --------------------------------------------------------------


def test_embedded_aws_holds_the_state_table_of_the_template(
    embedded: EmbeddedAws, stack: StackTemplate
) -> None:
    # When the stack's resources are created on a freshly started embedded AWS
    resources = create_stack_resources(embedded.dynamodb(), stack, TABLE_NAME)
    # Then the table has template.yaml's key schema, and the config path is the template's
    table = embedded.dynamodb().describe_table(TableName=TABLE_NAME)["Table"]
    template_table = stack.resource("StateTable")["Properties"]
    assert table["KeySchema"] == template_table["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        template_table["AttributeDefinitions"], key=str
    )
    assert resources.config_path == stack.parameters["ConfigPath"] == CONFIG_PATH
    assert resources.names() == {"StateTable": TABLE_NAME}


def test_a_plain_boto3_client_reaches_the_embedded_aws_through_the_environment(
    embedded: EmbeddedAws,
) -> None:
    # Given this process pointed at the embedded AWS, as the printed exports point a shell
    with embedded.as_process_environment():
        assert os.environ["AWS_ENDPOINT_URL"] == embedded.endpoint_url
        ecr = boto3.client("ecr")
        # When a pull-through cache rule is created through an ordinary client
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="k8s", upstreamRegistryUrl="registry.k8s.io"
        )
        # Then the embedded AWS holds it
        rules = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
        assert [(r["ecrRepositoryPrefix"], r["upstreamRegistry"]) for r in rules] == [
            ("k8s", "k8s")
        ]
    # And the environment is as it was
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_starting_on_a_busy_port_fails_with_the_reason() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(EmbeddedAwsError, match=rf"cannot listen on 127.0.0.1:{port}: "):
            start_embedded_aws(port=port)


LOCAL_UP_CONFIG = """
rules:
  - prefix: k8s
    upstream: registry.k8s.io
images:
  - k8s/pause:3.10
"""


def wait_for(condition: Any, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise AssertionError(f"not true within {seconds} s: {condition}")


def test_local_up_runs_the_deployed_stack_until_interrupted(
    cli: Cli, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def edit_a_parameter_from_another_shell_then_press_ctrl_c() -> None:
        # What a second shell does with what `local up` printed before it started waiting
        printed = capsys.readouterr().out
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", printed, flags=re.MULTILINE))
        session = boto3.Session(
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
            region_name=exports["AWS_REGION"],
        )
        endpoint = exports["AWS_ENDPOINT_URL"]
        session.client("ssm", endpoint_url=endpoint).put_parameter(
            Name=exports["CACHE_PILOT_CONFIG_PATH"] + "config",
            Value=LOCAL_UP_CONFIG,
            Type="String",
        )
        table = StateTable(
            session.client("dynamodb", endpoint_url=endpoint), exports["CACHE_PILOT_STATE_TABLE"]
        )

        def warmed() -> bool:
            images = table.images()
            return bool(images) and images["k8s/pause:3.10"].status.value == "WARM"

        wait_for(warmed)
        seen["exports"] = exports
        seen["rules"] = session.client(
            "ecr", endpoint_url=endpoint
        ).describe_pull_through_cache_rules()["pullThroughCacheRules"]
        seen["routes"] = session.client("ec2", endpoint_url=endpoint).describe_route_tables(
            RouteTableIds=[exports["CACHE_PILOT_ROUTE_TABLES"]]
        )["RouteTables"][0]["Routes"]
        raise KeyboardInterrupt

    monkeypatch.setattr(
        "cache_pilot_cli.local.wait_until_interrupted",
        edit_a_parameter_from_another_shell_then_press_ctrl_c,
    )
    # When `cache-pilot local up` runs on a free port and a parameter is edited against it
    run = cli("local", "up", "--port", "0")
    # Then its exports named the deployed stack's resources
    exports = seen["exports"]
    assert exports["CACHE_PILOT_STATE_TABLE"].startswith("cache-pilot-StateTable-")
    assert exports["CACHE_PILOT_CONFIG_PATH"] == CONFIG_PATH
    assert exports["CACHE_PILOT_EVENT_SOURCE"] == "cache-pilot.cache-pilot"
    assert exports["AWS_REGION"] == REGION
    # And the functions reacted: the rule exists, the image was warmed, the NAT route is gone
    assert [rule["ecrRepositoryPrefix"] for rule in seen["rules"]] == ["k8s"]
    assert [r for r in seen["routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"] == []
    assert "sync_config <- Parameter Store Change (Create /cache-pilot/config)" in run.stdout
    assert "finish_warmup <- Build State Change (SUCCEEDED)" in run.stdout
    # And Ctrl-C stopped it cleanly: exit status 0, and the endpoint no longer answers
    assert run.exit_code == 0
    assert "Stopped" in run.stdout
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(exports["AWS_ENDPOINT_URL"] + "/moto-api/data.json", timeout=2)


def test_local_tick_needs_the_embedded_aws(cli: Cli) -> None:
    run = cli("local", "tick")
    assert run.exit_code == 1
    assert "AWS_ENDPOINT_URL is not set" in run.stderr


def test_local_tick_fires_the_named_schedule_of_the_local_stack(
    cli: Cli, embedded: EmbeddedAws
) -> None:
    from cache_pilot_local.deploy import deploy_stack

    deployed = deploy_stack(embedded, {"CreateDemoNetwork": "true"})
    with embedded.as_process_environment():
        run = cli("local", "tick", "freshnesscheck")
        unknown = cli("local", "tick", "hourly")
    assert run.exit_code == 0, run.stderr
    assert re.match(r"fired CheckFreshnessFunctionFreshnessCheck \(rate\(6 hours\)\)", run.stdout)
    messages = (
        embedded.session()
        .client("sqs", endpoint_url=embedded.endpoint_url)
        .receive_message(QueueUrl=deployed.function_queues["CheckFreshnessFunction"])["Messages"]
    )
    assert json.loads(messages[0]["Body"])["detail-type"] == "Scheduled Event"
    assert unknown.exit_code == 1
    assert "no scheduled rule matches hourly" in unknown.stderr


# --- the demo -----------------------------------------------------------------------------------


def section(stdout: str, heading: str) -> str:
    """The output from a step's heading to the next step's."""
    start = stdout.index(heading)
    following = re.search(r"^\d+\. ", stdout[start + len(heading) :], flags=re.MULTILINE)
    return stdout[start : start + len(heading) + following.start()] if following else stdout[start:]


@pytest.mark.demo
def test_local_demo_tells_the_seeds_story(cli: Cli) -> None:
    # When the demo runs, with no AWS credentials of its own and no endpoint set
    # (how long it takes is measured by bench/demo_time.py)
    run = cli("local", "demo")
    # Then it succeeds and leaves this process's environment as it was
    assert run.exit_code == 0, run.stderr
    assert "AWS_ENDPOINT_URL" not in os.environ
    out = run.stdout
    # And the timeline shows each step in order: rules created, images listed, build started
    # and its NAT route added, build finished, images WARM, NAT route removed
    timeline = [
        "rule create docker-hub: not in ECR",
        "images 5 list",
        "outcome started",
        "5 images, build ",
        "NAT route 0.0.0.0/0 -> nat-",
        "CodeBuild ",
        "pulled k8s/pause:3.10 sha256:",
        "finish_warmup <- Build State Change (SUCCEEDED)",
        "build SUCCEEDED: 5 WARM",
        "no default route in rtb-",
    ]
    position = out.index("2. The example configuration")
    for marker in timeline:
        position = out.index(marker, position)  # ValueError: missing, or out of order
    warmed = section(out, "2. The example configuration")
    for reference in [*DESIGN_IMAGES, "k8s/coredns/coredns:v1.11.3", "k8s/kube-proxy:v1.31.2"]:
        assert re.search(rf"^\s+{re.escape(reference)}\s+WARM\s+[0-9a-f]{{12}}\s", warmed, re.M)
    # And with the NAT gateway deleted, the warmed image pulls and the new one does not
    deleted = section(out, "3. The NAT gateway deleted")
    assert re.search(r"pull docker-hub/library/nginx:1.27\s+pulled, [0-9a-f]{12}", deleted)
    assert re.search(r"pull docker-hub/library/redis:7.4\s+failed: ", deleted)
    # And the edit changed only what changed; the new image waits for a NAT gateway
    edit = section(out, "4. An edit")
    assert "rule update docker-hub: credential or role changed" in edit
    assert "images 1 list, 1 retire" in edit
    assert "outcome nat-unavailable" in edit
    assert re.search(r"docker-hub\s.*ecr-pullthroughcache/docker-hub-rotated-\w{6}\s", edit)
    assert re.search(r"ecr-public/amazonlinux/amazonlinux:latest\s+RETIRED\s", edit)
    assert re.search(r"docker-hub/library/redis:7.4\s+PENDING\s", edit)
    # And a summary table ends it
    assert re.search(r"^ configure and warm\s+\d+ invocations, 1 build", out, re.M)
