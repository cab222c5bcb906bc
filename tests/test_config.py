"""The configuration document: what validates, what it resolves to, and the exact message of
every problem a user can make."""

from __future__ import annotations

import textwrap

import pytest

from cache_pilot.config import (
    CacheConfig,
    ConfigSource,
    ConfigurationAbsent,
    ConfigurationError,
    ValidationContext,
    load_config,
)
from tests.conftest import DESIGN_EXAMPLE

CONTEXT = ValidationContext(account_id="123456789012", region="eu-west-1")
MAIN = "/cache-pilot/config"


def document(text: str, name: str = MAIN) -> ConfigSource:
    return ConfigSource(name=name, type="String", value=textwrap.dedent(text))


def image_list(references: str, name: str = "/cache-pilot/images") -> ConfigSource:
    return ConfigSource(name=name, type="StringList", value=references)


def problems_of(*sources: ConfigSource) -> list[str]:
    with pytest.raises(ConfigurationError) as raised:
        load_config(sources, CONTEXT)
    return [str(problem) for problem in raised.value.problems]


# --- valid documents --------------------------------------------------------------------------


def test_design_example_resolves_rules_images_and_defaults() -> None:
    # Given the example of the design page
    # When it is loaded
    config = load_config([document(DESIGN_EXAMPLE)], CONTEXT)
    # Then every rule has ECR's kind and URL, and every image its rule and settings
    assert [
        (r.prefix, r.upstream_registry, r.upstream_url, r.credential) for r in config.rules
    ] == [
        ("ecr-public", "ecr-public", "public.ecr.aws", None),
        ("docker-hub", "docker-hub", "registry-1.docker.io", "ecr-pullthroughcache/docker-hub"),
        ("k8s", "k8s", "registry.k8s.io", None),
    ]
    assert [
        (i.reference, i.rule_prefix, i.platforms, i.max_age_seconds) for i in config.images
    ] == [
        ("ecr-public/amazonlinux/amazonlinux:latest", "ecr-public", ("linux/amd64",), 7 * 86400),
        ("docker-hub/library/nginx:1.27", "docker-hub", ("linux/amd64",), 7 * 86400),
        ("k8s/pause:3.10", "k8s", ("linux/amd64", "linux/arm64"), 3 * 86400),
    ]


def test_parameters_merge_string_lists_and_documents() -> None:
    # Given rules in one document, defaults in another and images in a StringList
    sources = [
        document("rules:\n  - {prefix: quay, upstream: quay.io}\n", "/cache-pilot/rules"),
        document("defaults: {platforms: [all], max_age: 12h}\n", "/cache-pilot/team-a/defaults"),
        image_list(
            "quay/prometheus/prometheus:v3.0.0, quay/coreos/etcd ,", "/cache-pilot/team-a/images"
        ),
    ]
    # When they are merged
    config = load_config(sources, CONTEXT)
    # Then the StringList's references use the defaults, a missing tag meaning latest
    assert [(i.reference, i.platforms, i.max_age_seconds) for i in config.images] == [
        ("quay/prometheus/prometheus:v3.0.0", ("all",), 43200),
        ("quay/coreos/etcd:latest", ("all",), 43200),
    ]
    assert config.sources == (
        "/cache-pilot/rules",
        "/cache-pilot/team-a/defaults",
        "/cache-pilot/team-a/images",
    )


def test_json_document_and_identical_duplicates_are_accepted() -> None:
    # Given a JSON document and a YAML one that repeat the same rule and image identically
    json_doc = document(
        '{"rules": [{"prefix": "ghcr", "upstream": "ghcr.io", "credential": '
        '"arn:aws:secretsmanager:eu-west-1:123456789012:secret:ecr-pullthroughcache/ghcr-AbC123"}],'
        ' "images": ["ghcr/org/tool:1.0@sha256:' + "a" * 64 + '"]}',
        "/cache-pilot/a",
    )
    yaml_doc = document(
        """
        rules:
          - prefix: ghcr/
            upstream: github-container-registry
            credential: arn:aws:secretsmanager:eu-west-1:123456789012:secret:ecr-pullthroughcache/ghcr-AbC123
        """,
        "/cache-pilot/b",
    )
    # When merged
    config = load_config([json_doc, yaml_doc], CONTEXT)
    # Then there is one rule (the trailing '/' of a prefix is implied) and the pinned image
    assert [rule.prefix for rule in config.rules] == ["ghcr"]
    (image,) = config.images
    assert (image.repository, image.tag, image.digest) == (
        "ghcr/org/tool",
        "1.0",
        "sha256:" + "a" * 64,
    )


def test_ecr_upstream_with_role_and_the_longest_prefix_wins() -> None:
    config = load_config(
        [
            document(
                """
                rules:
                  - prefix: mirror
                    upstream: 210987654321.dkr.ecr.us-east-1.amazonaws.com
                    role: arn:aws:iam::123456789012:role/ecr-upstream-pull
                  - prefix: mirror/team
                    upstream: quay
                images: [mirror/team/app:1, mirror/base:2]
                """
            )
        ],
        CONTEXT,
    )
    assert [(i.reference, i.rule_prefix) for i in config.images] == [
        ("mirror/team/app:1", "mirror/team"),
        ("mirror/base:2", "mirror"),
    ]
    assert config.rule_for("mirror") is not None
    assert (
        config.rule_for("mirror").custom_role_arn
        == "arn:aws:iam::123456789012:role/ecr-upstream-pull"
    )  # type: ignore[union-attr]


def test_rules_empty_list_is_a_valid_configuration() -> None:
    config = load_config([document("rules: []\n")], CONTEXT)
    assert config == CacheConfig(rules=(), images=(), sources=(MAIN,))


def test_no_parameter_at_all_is_absent_not_empty() -> None:
    with pytest.raises(ConfigurationAbsent):
        load_config([], CONTEXT)


# --- invalid documents: every problem, exact message ------------------------------------------

RULES_OK = "rules:\n  - {prefix: docker-hub, upstream: docker-hub, credential: ecr-pullthroughcache/hub}\n  - {prefix: k8s, upstream: k8s}\n"

INVALID_CASES = [
    pytest.param(
        "rules:\n  - prefix: k8s\n    upstream: k8s\n   images: []\n",
        [
            f"{MAIN}: line 4, column 4: not valid YAML or JSON (expected <block end>, but found "
            "'<block mapping start>'); fix the syntax there"
        ],
        id="unparseable yaml names the line",
    ),
    pytest.param(
        '{"rules": [}',
        [
            f"{MAIN}: line 1, column 12: not valid YAML or JSON (expected the node content, but found '}}'); fix the syntax there"
        ],
        id="unparseable json names the line",
    ),
    pytest.param(
        "- k8s/pause:3.10\n",
        [
            f"{MAIN}: document: expected a mapping with 'rules', 'images' and/or 'defaults'; a "
            "plain list of image references belongs in a StringList parameter"
        ],
        id="a list instead of a document",
    ),
    pytest.param(
        "rules:\n  - prefix: K\n    upstream: k8s\n",
        [
            f"{MAIN}: rules[0] 'K' (line 2): prefix 'K' has 1 characters; ECR needs 2 to 30, e.g. 'docker-hub'"
        ],
        id="prefix too short",
    ),
    pytest.param(
        "rules:\n  - prefix: " + "a" * 31 + "\n    upstream: k8s\n",
        [
            f"{MAIN}: rules[0] '{'a' * 31}' (line 2): prefix '{'a' * 31}' has 31 characters; ECR needs 2 to 30, e.g. 'docker-hub'"
        ],
        id="prefix too long",
    ),
    pytest.param(
        "rules:\n  - prefix: Docker_Hub\n    upstream: quay\n",
        [
            f"{MAIN}: rules[0] 'Docker_Hub' (line 2): prefix 'Docker_Hub' breaks ECR's repository "
            "prefix pattern; use lowercase letters and digits separated by '.', '_', '-' or '/', "
            "e.g. 'docker-hub'"
        ],
        id="prefix breaks the pattern",
    ),
    pytest.param(
        "rules:\n  - prefix: hub\n    upstream: hub.example.com\n",
        [
            f"{MAIN}: rules[0] 'hub' (line 2): unknown upstream 'hub.example.com'; use one of "
            "azure-container-registry, chainguard, docker-hub, ecr, ecr-public, "
            "github-container-registry, gitlab-container-registry, k8s, quay, or a registry URL "
            "such as 'ghcr.io' or 'myregistry.azurecr.io'"
        ],
        id="unknown upstream URL",
    ),
    pytest.param(
        "rules:\n  - prefix: acr\n    upstream: azure-container-registry\n    credential: ecr-pullthroughcache/acr\n",
        [
            f"{MAIN}: rules[0] 'acr' (line 2): upstream 'azure-container-registry' needs the "
            "registry's own URL; write it, for example 'upstream: myregistry.azurecr.io'"
        ],
        id="a kind that needs its URL",
    ),
    pytest.param(
        "rules:\n  - prefix: ghcr\n    upstream: ghcr.io\n",
        [
            f"{MAIN}: rules[0] 'ghcr' (line 2): upstream 'github-container-registry' needs a "
            "credential; add 'credential: ecr-pullthroughcache/ghcr' naming a Secrets Manager "
            "secret that holds JSON with username and accessToken"
        ],
        id="missing credential",
    ),
    pytest.param(
        "rules:\n  - prefix: hub\n    upstream: docker-hub\n    credential: dockerhub-token\n",
        [
            f"{MAIN}: rules[0] 'hub' (line 2): credential 'dockerhub-token' must name a secret "
            "that begins with 'ecr-pullthroughcache/' (ECR reads no other); rename the secret to "
            "'ecr-pullthroughcache/dockerhub-token'"
        ],
        id="credential name without the required prefix",
    ),
    pytest.param(
        "rules:\n  - prefix: hub\n    upstream: docker-hub\n    credential: "
        "arn:aws:secretsmanager:eu-west-1:999999999999:secret:ecr-pullthroughcache/hub-AbC123\n",
        [
            f"{MAIN}: rules[0] 'hub' (line 2): credential 'arn:aws:secretsmanager:eu-west-1:"
            "999999999999:secret:ecr-pullthroughcache/hub-AbC123' is in account 999999999999, but "
            "ECR only reads a secret of its own account 123456789012; create the secret there"
        ],
        id="credential ARN in another account",
    ),
    pytest.param(
        "rules:\n  - prefix: hub\n    upstream: docker-hub\n    credential: "
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-AbC123\n",
        [
            f"{MAIN}: rules[0] 'hub' (line 2): credential 'arn:aws:secretsmanager:us-east-1:"
            "123456789012:secret:ecr-pullthroughcache/hub-AbC123' is in Region us-east-1, but the "
            "rules live in eu-west-1; create the secret in eu-west-1"
        ],
        id="credential ARN in another Region",
    ),
    pytest.param(
        "rules:\n  - prefix: quay\n    upstream: quay\n    credential: ecr-pullthroughcache/quay\n",
        [
            f"{MAIN}: rules[0] 'quay' (line 2): upstream 'quay' takes no credential; remove 'credential'"
        ],
        id="credential where none is taken",
    ),
    pytest.param(
        "rules:\n  - prefix: mirror\n    upstream: 210987654321.dkr.ecr.us-east-1.amazonaws.com\n",
        [
            f"{MAIN}: rules[0] 'mirror' (line 2): an ECR upstream in another account "
            "(210987654321) needs 'role: arn:aws:iam::<account>:role/<name>', a role in this "
            "registry's account that ECR assumes to pull"
        ],
        id="ecr upstream without a role",
    ),
    pytest.param(
        "rules:\n  - prefix: mirror\n    upstream: 210987654321.dkr.ecr.us-east-1.amazonaws.com\n"
        "    role: arn:aws:iam::210987654321:role/puller\n",
        [
            f"{MAIN}: rules[0] 'mirror' (line 2): role 'arn:aws:iam::210987654321:role/puller' is "
            "in account 210987654321; ECR needs a role of the registry's own account 123456789012"
        ],
        id="role in another account",
    ),
    pytest.param(
        "rules:\n  - prefix: k8s\n    upstream: k8s\n    bogus: 1\n",
        [
            f"{MAIN}: rules[0] 'k8s' (line 2): unknown field 'bogus'; the fields are prefix, "
            "upstream, credential, role, upstream_prefix"
        ],
        id="unknown field in a rule",
    ),
    pytest.param(
        "rules:\n  - upstream: k8s\n",
        [f"{MAIN}: rules[0] (line 2): 'prefix' is missing; add it"],
        id="rule without prefix",
    ),
    pytest.param(
        "rules:\n  - {prefix: k8s, upstream: k8s}\n  - {prefix: k8s, upstream: quay}\n",
        [
            f"{MAIN}: rules[1] 'k8s' (line 3): prefix 'k8s' is also defined in {MAIN} (rules[0] "
            "'k8s' (line 2)) with another definition; keep one of them"
        ],
        id="one prefix, two definitions",
    ),
    pytest.param(
        "rules:\n" + "".join(f"  - {{prefix: p{n:02d}, upstream: quay}}\n" for n in range(51)),
        [
            f"{MAIN}: rules: 51 rules; ECR allows at most 50 pull-through cache rules per registry "
            "and Region, remove 1"
        ],
        id="more than 50 rules",
    ),
    pytest.param(
        RULES_OK + "images:\n  - quay/prometheus/prometheus:v3\n",
        [
            f"{MAIN}: images[0] 'quay/prometheus/prometheus:v3' (line 5): "
            "'quay/prometheus/prometheus:v3' matches no rule's prefix (prefixes: docker-hub, k8s); "
            "start it with a rule's prefix, as in '<prefix>/<repository>:<tag>', or add a rule"
        ],
        id="image under no rule",
    ),
    pytest.param(
        RULES_OK + "images:\n  - docker-hub/nginx:1.27\n",
        [
            f"{MAIN}: images[0] 'docker-hub/nginx:1.27' (line 5): Docker Hub official images live "
            "under 'library/'; write 'docker-hub/library/nginx:1.27' instead of 'docker-hub/nginx:1.27'"
        ],
        id="docker hub official image without library",
    ),
    pytest.param(
        RULES_OK + "images:\n  - k8s/pause:-bad\n",
        [
            f"{MAIN}: images[0] 'k8s/pause:-bad' (line 5): tag '-bad' of 'k8s/pause:-bad' is "
            "malformed; a tag is up to 128 letters, digits, '_', '.' and '-', not starting with "
            "'.' or '-'"
        ],
        id="malformed tag",
    ),
    pytest.param(
        RULES_OK + "images:\n  - k8s/pause:3.10@sha256:abc\n",
        [
            f"{MAIN}: images[0] 'k8s/pause:3.10@sha256:abc' (line 5): digest 'sha256:abc' of "
            "'k8s/pause:3.10@sha256:abc' is malformed; write 'sha256:' and 64 lowercase hex digits"
        ],
        id="malformed digest",
    ),
    pytest.param(
        RULES_OK + "images:\n  - k8s/pause@sha256:" + "b" * 64 + "\n",
        [
            f"{MAIN}: images[0] 'k8s/pause@sha256:{'b' * 64}' (line 5): 'k8s/pause@sha256:"
            f"{'b' * 64}' names a digest without a tag; a first pull by digest does not fill the "
            f"cache, so write the tag too: 'k8s/pause:<tag>@sha256:{'b' * 64}'"
        ],
        id="digest without a tag",
    ),
    pytest.param(
        RULES_OK + "images:\n  - image: k8s/pause:3.10\n    platforms: [amd64]\n",
        [
            f"{MAIN}: images[0] 'k8s/pause:3.10' (line 5): platform 'amd64' is not "
            "os/arch[/variant]; write e.g. 'linux/amd64' or 'linux/arm64', or 'all'"
        ],
        id="malformed platform",
    ),
    pytest.param(
        RULES_OK + "images:\n  - image: k8s/pause:3.10\n    platforms: [all, linux/amd64]\n",
        [
            f"{MAIN}: images[0] 'k8s/pause:3.10' (line 5): 'all' already covers every platform; write [all] alone"
        ],
        id="all with another platform",
    ),
    pytest.param(
        RULES_OK + "images:\n  - image: k8s/pause:3.10\n    max_age: 3 days\n",
        [
            f"{MAIN}: images[0] 'k8s/pause:3.10' (line 5): max_age '3 days' is not a duration; "
            "write a whole number and a unit h, d or w, e.g. 12h, 7d or 2w"
        ],
        id="malformed max age",
    ),
    pytest.param(
        RULES_OK + "defaults:\n  max_age: 30m\n",
        [
            f"{MAIN}: defaults: max_age '30m' is not a duration; write a whole number and a unit "
            "h, d or w, e.g. 12h, 7d or 2w"
        ],
        id="max age in minutes",
    ),
    pytest.param(
        RULES_OK + "defaults:\n  max_age: 400d\n",
        [f"{MAIN}: defaults: max_age '400d' is out of range; use between 1h and 365d"],
        id="max age too long",
    ),
    pytest.param(
        RULES_OK + "images:\n  - K8s/Pause:3.10\n",
        [
            f"{MAIN}: images[0] 'K8s/Pause:3.10' (line 5): 'K8s/Pause:3.10' is not an image "
            "reference (repository names are lowercase); write <prefix>/<repository>:<tag>, e.g. "
            "'ecr-public/nginx/nginx:1.27'"
        ],
        id="uppercase repository",
    ),
    pytest.param(
        "images: [k8s/pause:3.10]\n",
        [
            f"{MAIN}: images[0] 'k8s/pause:3.10' (line 1): 'k8s/pause:3.10' matches no rule's "
            "prefix (prefixes: none yet); start it with a rule's prefix, as in "
            "'<prefix>/<repository>:<tag>', or add a rule",
            f"{MAIN}: rules: no parameter declares 'rules'; add a 'rules:' list (write 'rules: []' "
            "to remove every rule)",
        ],
        id="no rules declared anywhere",
    ),
    pytest.param(
        "rules: []\nmirrors: []\n",
        [f"{MAIN}: 'mirrors': unknown section 'mirrors'; the sections are rules, images, defaults"],
        id="unknown section",
    ),
]


@pytest.mark.parametrize(("text", "expected"), INVALID_CASES)
def test_invalid_document_reports_each_problem_exactly(text: str, expected: list[str]) -> None:
    # Given a document with a mistake; When it is loaded; Then each problem is named exactly
    assert problems_of(document(text)) == expected


def test_every_problem_of_every_parameter_is_reported_at_once() -> None:
    # Given three parameters, each with its own mistakes
    sources = [
        document(
            """
            rules:
              - {prefix: hub, upstream: docker-hub, credential: ecr-pullthroughcache/hub}
              - {prefix: q, upstream: quay}
            images:
              - hub/redis:7
              - q/app:1
            """,
        ),
        image_list("hub/library/redis:7,hub/library/Redis:7"),
        document("rules: [\n", "/cache-pilot/broken"),
    ]
    # When they are loaded together
    problems = problems_of(*sources)
    # Then every problem is there, and the rule that failed does not also orphan its images
    assert problems == [
        "/cache-pilot/broken: line 2, column 1: not valid YAML or JSON (expected the node "
        "content, but found '<stream end>'); fix the syntax there",
        f"{MAIN}: rules[1] 'q' (line 4): prefix 'q' has 1 characters; ECR needs 2 to 30, e.g. 'docker-hub'",
        "/cache-pilot/images: item 2 'hub/library/Redis:7': 'hub/library/Redis:7' is not an image "
        "reference (repository names are lowercase); write <prefix>/<repository>:<tag>, e.g. "
        "'ecr-public/nginx/nginx:1.27'",
        f"{MAIN}: images[0] 'hub/redis:7' (line 6): Docker Hub official images live under "
        "'library/'; write 'hub/library/redis:7' instead of 'hub/redis:7'",
    ]


def test_conflicting_settings_for_one_image_across_parameters() -> None:
    sources = [
        document(
            RULES_OK + "images:\n  - {image: k8s/pause:3.10, max_age: 1d}\n", "/cache-pilot/a"
        ),
        document("images:\n  - {image: k8s/pause:3.10, max_age: 2d}\n", "/cache-pilot/b"),
    ]
    assert problems_of(*sources) == [
        "/cache-pilot/b: images[0] 'k8s/pause:3.10' (line 2): 'k8s/pause:3.10' is also listed in "
        "/cache-pilot/a (images[0] 'k8s/pause:3.10' (line 5)) with other platforms or max_age; "
        "keep one entry"
    ]


def test_same_account_ecr_upstream_needs_no_role() -> None:
    config = load_config(
        [
            document(
                "rules:\n  - {prefix: west, upstream: 123456789012.dkr.ecr.us-west-2.amazonaws.com}\n"
            )
        ],
        CONTEXT,
    )
    assert config.rules[0].custom_role_arn is None


def test_offline_validation_skips_account_checks() -> None:
    # Given a credential ARN of some account, validated with no account known (the CLI offline)
    source = document(
        "rules:\n  - prefix: hub\n    upstream: docker-hub\n    credential: "
        "arn:aws:secretsmanager:eu-west-1:999999999999:secret:ecr-pullthroughcache/hub-AbC123\n"
    )
    # Then it is accepted
    assert load_config([source], ValidationContext()).rules[0].credential is not None
