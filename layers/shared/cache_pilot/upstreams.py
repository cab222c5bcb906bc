"""The upstream registries that ECR's pull-through cache supports, and how each one is named."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Authentication(StrEnum):
    NONE = "none"
    SECRET = "secret"  # a Secrets Manager secret named ecr-pullthroughcache/...
    ROLE = "role"  # an IAM role in the registry's account (ECR to ECR)


@dataclass(frozen=True)
class UpstreamKind:
    name: str
    default_url: str | None  # None where the URL names the user's own registry
    url_pattern: re.Pattern[str]
    authentication: Authentication
    url_example: str


UPSTREAM_KINDS: dict[str, UpstreamKind] = {
    kind.name: kind
    for kind in (
        UpstreamKind(
            "ecr-public",
            "public.ecr.aws",
            re.compile(r"^public\.ecr\.aws$"),
            Authentication.NONE,
            "public.ecr.aws",
        ),
        UpstreamKind(
            "k8s",
            "registry.k8s.io",
            re.compile(r"^registry\.k8s\.io$"),
            Authentication.NONE,
            "registry.k8s.io",
        ),
        UpstreamKind("quay", "quay.io", re.compile(r"^quay\.io$"), Authentication.NONE, "quay.io"),
        UpstreamKind(
            "docker-hub",
            "registry-1.docker.io",
            re.compile(r"^registry-1\.docker\.io$"),
            Authentication.SECRET,
            "registry-1.docker.io",
        ),
        UpstreamKind(
            "github-container-registry",
            "ghcr.io",
            re.compile(r"^ghcr\.io$"),
            Authentication.SECRET,
            "ghcr.io",
        ),
        UpstreamKind(
            "azure-container-registry",
            None,
            re.compile(r"^[a-z0-9]{5,50}\.azurecr\.io$"),
            Authentication.SECRET,
            "myregistry.azurecr.io",
        ),
        UpstreamKind(
            "gitlab-container-registry",
            "registry.gitlab.com",
            re.compile(r"^registry\.gitlab\.com$"),
            Authentication.SECRET,
            "registry.gitlab.com",
        ),
        UpstreamKind(
            "chainguard", "cgr.dev", re.compile(r"^cgr\.dev$"), Authentication.SECRET, "cgr.dev"
        ),
        UpstreamKind(
            "ecr",
            None,
            re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$"),
            Authentication.ROLE,
            "111122223333.dkr.ecr.us-east-1.amazonaws.com",
        ),
    )
}

# Names people write for a registry that ECR knows under another URL.
URL_ALIASES = {
    "docker.io": "registry-1.docker.io",
    "index.docker.io": "registry-1.docker.io",
    "registry.hub.docker.com": "registry-1.docker.io",
}


@dataclass(frozen=True)
class Upstream:
    kind: UpstreamKind
    url: str


class UnknownUpstreamError(ValueError):
    pass


def resolve_upstream(written: str) -> Upstream:
    """Turn what a user wrote (a kind such as `quay`, or a URL) into ECR's kind and URL."""
    text = written.strip().lower()
    text = re.sub(r"^https?://", "", text).rstrip("/")
    if text in UPSTREAM_KINDS:
        kind = UPSTREAM_KINDS[text]
        if kind.default_url is None:
            raise UnknownUpstreamError(
                f"upstream '{written}' needs the registry's own URL; write it, "
                f"for example 'upstream: {kind.url_example}'"
            )
        return Upstream(kind, kind.default_url)
    url = URL_ALIASES.get(text, text)
    for kind in UPSTREAM_KINDS.values():
        if kind.url_pattern.match(url):
            return Upstream(kind, url)
    known = ", ".join(sorted(UPSTREAM_KINDS))
    raise UnknownUpstreamError(
        f"unknown upstream '{written}'; use one of {known}, or a registry URL such as "
        "'ghcr.io' or 'myregistry.azurecr.io'"
    )
