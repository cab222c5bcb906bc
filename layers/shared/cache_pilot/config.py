"""The configuration document: what users write in Parameter Store, merged and validated.

Every String parameter under the configuration path holds one YAML (or JSON) document with
`rules`, `images` and `defaults`; every StringList parameter holds image references. All of them
are merged into one `CacheConfig`. Validation never stops at the first problem: it collects
every problem, each naming the parameter, the entry and the fix, and raises them together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cache_pilot.upstreams import Authentication, UnknownUpstreamError, resolve_upstream

MAX_RULES = 50  # ECR: pull-through cache rules per registry per Region, not adjustable
DEFAULT_PLATFORMS = ("linux/amd64",)
DEFAULT_MAX_AGE = "7d"
ALL_PLATFORMS = "all"

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
ECR_PREFIX_PATTERN = re.compile(rf"^(?:{_COMPONENT}(?:/{_COMPONENT})*/?|ROOT)$")
REPOSITORY_PATTERN = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_PATTERN = re.compile(r"^sha256:[a-f0-9]{64}$")
PLATFORM_PATTERN = re.compile(
    r"^(?:linux|windows)/(?:amd64|arm64|arm|386|ppc64le|s390x|riscv64|mips64le)(?:/v[5-8])?$"
)
MAX_AGE_PATTERN = re.compile(r"^(?P<count>\d+)(?P<unit>[hdw])$")
SECRET_NAME_PREFIX = "ecr-pullthroughcache/"
SECRET_ARN_PATTERN = re.compile(
    r"^arn:aws(?:-\w+)*:secretsmanager:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):secret:"
    r"(?P<name>[a-zA-Z0-9/_+=.@-]+)$"
)
ROLE_ARN_PATTERN = re.compile(r"^arn:aws(?:-\w+)*:iam::(?P<account>\d{12}):role/[\w+=,.@/-]+$")
_SECONDS_PER_UNIT = {"h": 3600, "d": 86400, "w": 604800}
_MIN_MAX_AGE_SECONDS = 3600
_MAX_MAX_AGE_SECONDS = 365 * 86400


@dataclass(frozen=True)
class ConfigSource:
    """One parameter under the configuration path, as Parameter Store returned it."""

    name: str
    type: Literal["String", "StringList"]
    value: str
    version: int = 0


@dataclass(frozen=True)
class ValidationContext:
    """Where the configuration will be applied; None skips the checks that need it."""

    account_id: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Problem:
    parameter: str
    entry: str
    message: str

    def __str__(self) -> str:
        return f"{self.parameter}: {self.entry}: {self.message}"


class ConfigurationError(Exception):
    """The configuration is invalid; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class ConfigurationAbsent(Exception):
    """No parameter exists under the configuration path."""


# --- what users write -------------------------------------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _context(info: ValidationInfo) -> ValidationContext:
    context = info.context
    return context if isinstance(context, ValidationContext) else ValidationContext()


def _check_platforms(platforms: tuple[str, ...]) -> tuple[str, ...]:
    if not platforms:
        raise ValueError(
            f"platforms is empty; list at least one, e.g. [linux/amd64], or [{ALL_PLATFORMS}]"
        )
    if ALL_PLATFORMS in platforms:
        if len(platforms) > 1:
            raise ValueError(
                f"'{ALL_PLATFORMS}' already covers every platform; write [{ALL_PLATFORMS}] alone"
            )
        return platforms
    for platform in platforms:
        if not PLATFORM_PATTERN.match(platform):
            raise ValueError(
                f"platform '{platform}' is not os/arch[/variant]; write e.g. 'linux/amd64' or "
                f"'linux/arm64', or '{ALL_PLATFORMS}'"
            )
    return tuple(dict.fromkeys(platforms))


def max_age_seconds(text: str) -> int:
    match = MAX_AGE_PATTERN.match(text)
    if not match:
        raise ValueError(
            f"max_age '{text}' is not a duration; write a whole number and a unit h, d or w, "
            "e.g. 12h, 7d or 2w"
        )
    seconds = int(match["count"]) * _SECONDS_PER_UNIT[match["unit"]]
    if not _MIN_MAX_AGE_SECONDS <= seconds <= _MAX_MAX_AGE_SECONDS:
        raise ValueError(f"max_age '{text}' is out of range; use between 1h and 365d")
    return seconds


def _check_max_age(text: str) -> str:
    max_age_seconds(text)
    return text


def _check_reference(text: str) -> str:
    parse_reference(text)
    return text


Platforms = Annotated[tuple[str, ...], AfterValidator(_check_platforms)]
MaxAge = Annotated[str, AfterValidator(_check_max_age)]
Reference = Annotated[str, AfterValidator(_check_reference)]


class RuleEntry(_Entry):
    prefix: str
    upstream: str
    credential: str | None = None
    role: str | None = None
    upstream_prefix: str = "ROOT"

    @field_validator("prefix", "upstream_prefix")
    @classmethod
    def _ecr_prefix(cls, value: str, info: ValidationInfo) -> str:
        field = info.field_name
        if value != "ROOT":
            value = value.rstrip("/")
        if not 2 <= len(value) <= 30:
            raise ValueError(
                f"{field} '{value}' has {len(value)} characters; ECR needs 2 to 30, "
                "e.g. 'docker-hub'"
            )
        if not ECR_PREFIX_PATTERN.match(value):
            raise ValueError(
                f"{field} '{value}' breaks ECR's repository prefix pattern; use lowercase letters "
                "and digits separated by '.', '_', '-' or '/', e.g. 'docker-hub'"
            )
        return value

    @field_validator("upstream")
    @classmethod
    def _known_upstream(cls, value: str) -> str:
        try:
            resolve_upstream(value)
        except UnknownUpstreamError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("credential")
    @classmethod
    def _credential_shape(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        context = _context(info)
        if value.startswith("arn:"):
            match = SECRET_ARN_PATTERN.match(value)
            if not match:
                raise ValueError(
                    f"credential '{value}' is not a Secrets Manager secret ARN; write the secret's "
                    f"name ('{SECRET_NAME_PREFIX}...') or its full ARN"
                )
            name = match["name"]
            if context.account_id and match["account"] != context.account_id:
                raise ValueError(
                    f"credential '{value}' is in account {match['account']}, but ECR only reads a "
                    f"secret of its own account {context.account_id}; create the secret there"
                )
            if context.region and match["region"] != context.region:
                raise ValueError(
                    f"credential '{value}' is in Region {match['region']}, but the rules live in "
                    f"{context.region}; create the secret in {context.region}"
                )
        else:
            name = value
        if not name.startswith(SECRET_NAME_PREFIX):
            raise ValueError(
                f"credential '{value}' must name a secret that begins with '{SECRET_NAME_PREFIX}' "
                f"(ECR reads no other); rename the secret to '{SECRET_NAME_PREFIX}{name}'"
            )
        return value

    @field_validator("role")
    @classmethod
    def _role_shape(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        match = ROLE_ARN_PATTERN.match(value)
        if not match:
            raise ValueError(
                f"role '{value}' is not an IAM role ARN; write 'arn:aws:iam::<account>:role/<name>'"
            )
        context = _context(info)
        if context.account_id and match["account"] != context.account_id:
            raise ValueError(
                f"role '{value}' is in account {match['account']}; ECR needs a role of the "
                f"registry's own account {context.account_id}"
            )
        return value

    @model_validator(mode="after")
    def _authentication_fits_upstream(self, info: ValidationInfo) -> Self:
        upstream = resolve_upstream(self.upstream)
        kind = upstream.kind
        if kind.authentication is Authentication.SECRET and self.credential is None:
            raise ValueError(
                f"upstream '{kind.name}' needs a credential; add 'credential: "
                f"{SECRET_NAME_PREFIX}{self.prefix}' naming a Secrets Manager secret that holds "
                "JSON with username and accessToken"
            )
        if kind.authentication is not Authentication.SECRET and self.credential is not None:
            raise ValueError(
                f"upstream '{kind.name}' takes no credential; remove 'credential'"
                + (
                    ", and name an IAM role with 'role'"
                    if kind.authentication is Authentication.ROLE
                    else ""
                )
            )
        if kind.authentication is Authentication.ROLE and self.role is None:
            upstream_account = kind.url_pattern.match(upstream.url)["account"]  # type: ignore[index]
            context = _context(info)
            if context.account_id is None or upstream_account != context.account_id:
                raise ValueError(
                    f"an ECR upstream in another account ({upstream_account}) needs 'role: "
                    "arn:aws:iam::<account>:role/<name>', a role in this registry's account that "
                    "ECR assumes to pull"
                )
        if kind.authentication is not Authentication.ROLE and self.role is not None:
            raise ValueError(f"upstream '{kind.name}' takes no role; remove 'role'")
        return self


class ImageEntry(_Entry):
    image: Reference
    platforms: Platforms | None = None
    max_age: MaxAge | None = None


class DefaultsEntry(_Entry):
    platforms: Platforms | None = None
    max_age: MaxAge | None = None


# --- what the sync applies --------------------------------------------------------------------


class ImageReference(BaseModel):
    model_config = ConfigDict(frozen=True)

    repository: str
    tag: str
    digest: str | None = None

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str) -> ImageReference:
    """Parse `repository[:tag][@digest]`; a missing tag means `latest`, as with docker pull."""
    repository, _, digest = text.partition("@")
    name, _, tag = repository.rpartition(":") if ":" in repository else (repository, "", "")
    if not REPOSITORY_PATTERN.match(name) or len(name) > 256:
        hint = " (repository names are lowercase)" if name.lower() != name else ""
        raise ValueError(
            f"'{text}' is not an image reference{hint}; write <prefix>/<repository>:<tag>, "
            "e.g. 'ecr-public/nginx/nginx:1.27'"
        )
    if tag and not TAG_PATTERN.match(tag):
        raise ValueError(
            f"tag '{tag}' of '{text}' is malformed; a tag is up to 128 letters, digits, '_', "
            "'.' and '-', not starting with '.' or '-'"
        )
    if digest and not DIGEST_PATTERN.match(digest):
        raise ValueError(
            f"digest '{digest}' of '{text}' is malformed; write 'sha256:' and 64 lowercase "
            "hex digits"
        )
    if digest and not tag:
        raise ValueError(
            f"'{text}' names a digest without a tag; a first pull by digest does not fill the "
            f"cache, so write the tag too: '{name}:<tag>@{digest}'"
        )
    return ImageReference(repository=name, tag=tag or "latest", digest=digest or None)


class CacheRule(BaseModel):
    """A pull-through cache rule as cache-pilot wants ECR to hold it."""

    model_config = ConfigDict(frozen=True)

    prefix: str
    upstream_registry: str
    upstream_url: str
    upstream_prefix: str = "ROOT"
    credential: str | None = None  # secret name or ARN, as written
    custom_role_arn: str | None = None
    source: str = Field(default="", exclude=True, repr=False)

    @property
    def authenticated(self) -> bool:
        return self.credential is not None or self.custom_role_arn is not None

    def definition(self) -> tuple[object, ...]:
        """What makes two rules the same rule, wherever they were written."""
        return (
            self.upstream_registry,
            self.upstream_url,
            self.upstream_prefix,
            self.credential,
            self.custom_role_arn,
        )


class CachedImage(BaseModel):
    """An image cache-pilot keeps warm, with the settings that apply to it."""

    model_config = ConfigDict(frozen=True)

    reference: str  # normalized: repository:tag[@digest]
    repository: str
    tag: str
    digest: str | None
    rule_prefix: str
    platforms: tuple[str, ...]
    max_age_seconds: int
    source: str = Field(default="", exclude=True, repr=False)

    def settings(self) -> tuple[object, ...]:
        return (self.platforms, self.max_age_seconds)


class CacheConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    rules: tuple[CacheRule, ...]
    images: tuple[CachedImage, ...]
    sources: tuple[str, ...]

    def rule_for(self, prefix: str) -> CacheRule | None:
        return next((rule for rule in self.rules if rule.prefix == prefix), None)


# --- parsing, merging and validation ----------------------------------------------------------


@dataclass(frozen=True)
class _Located:
    parameter: str
    entry: str


@dataclass
class _Entries:
    """Every entry that validated on its own, with where it was written."""

    rules: list[tuple[RuleEntry, _Located]] = field(default_factory=list)
    images: list[tuple[ImageEntry, _Located]] = field(default_factory=list)
    defaults: list[tuple[DefaultsEntry, _Located]] = field(default_factory=list)
    rule_declared_in: list[str] = field(default_factory=list)
    # Prefixes of rules that failed validation: their images are not also reported as orphans.
    broken_prefixes: set[str] = field(default_factory=set)
    # A document that could not be read may hold any rule: skip the checks that need them all.
    unreadable: bool = False


_DOCUMENT_KEYS = ("rules", "images", "defaults")


def load_config(
    sources: Iterable[ConfigSource], context: ValidationContext | None = None
) -> CacheConfig:
    """Merge and validate every parameter; raise ConfigurationError with every problem."""
    context = context or ValidationContext()
    ordered = sorted(sources, key=lambda source: source.name)
    if not ordered:
        raise ConfigurationAbsent("no parameter under the configuration path")
    problems: list[Problem] = []
    entries = _Entries()
    for source in ordered:
        if source.type == "StringList":
            _read_string_list(source, entries, problems)
        else:
            _read_document(source, context, entries, problems)
    config = _merge(entries, [source.name for source in ordered], problems)
    if problems:
        raise ConfigurationError(_unique(problems))
    return config


def _read_string_list(source: ConfigSource, entries: _Entries, problems: list[Problem]) -> None:
    references = [item.strip() for item in source.value.split(",") if item.strip()]
    for index, reference in enumerate(references):
        where = _Located(source.name, f"item {index + 1} '{reference}'")
        _validate_entry(ImageEntry, {"image": reference}, where, None, entries.images, problems)


def _read_document(
    source: ConfigSource, context: ValidationContext, entries: _Entries, problems: list[Problem]
) -> None:
    try:
        data = yaml.safe_load(source.value)
        lines = _item_lines(source.value)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "document"
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(
            Problem(
                source.name, position, f"not valid YAML or JSON ({reason}); fix the syntax there"
            )
        )
        entries.unreadable = True
        return
    if not isinstance(data, dict):
        problems.append(
            Problem(
                source.name,
                "document",
                "expected a mapping with 'rules', 'images' and/or 'defaults'; a plain list of "
                "image references belongs in a StringList parameter",
            )
        )
        entries.unreadable = True
        return
    for key in data:
        if key not in _DOCUMENT_KEYS:
            problems.append(
                Problem(
                    source.name,
                    f"'{key}'",
                    f"unknown section '{key}'; the sections are {', '.join(_DOCUMENT_KEYS)}",
                )
            )
    for section in ("rules", "images"):
        if section in data and not isinstance(data[section], list):
            problems.append(
                Problem(source.name, section, f"'{section}' must be a list; write '- ' per entry")
            )
    if isinstance(data.get("rules"), list):
        entries.rule_declared_in.append(source.name)
        for index, item in enumerate(data["rules"]):
            prefix = item.get("prefix") if isinstance(item, dict) else None
            where = _Located(source.name, _label("rules", index, prefix, lines))
            valid = _validate_entry(RuleEntry, item, where, context, entries.rules, problems)
            if not valid and isinstance(prefix, str):
                entries.broken_prefixes.add(prefix.rstrip("/"))
    if isinstance(data.get("images"), list):
        for index, item in enumerate(data["images"]):
            if isinstance(item, str):
                item = {"image": item}
            name = item.get("image") if isinstance(item, dict) else None
            where = _Located(source.name, _label("images", index, name, lines))
            _validate_entry(ImageEntry, item, where, None, entries.images, problems)
    if "defaults" in data:
        where = _Located(source.name, "defaults")
        _validate_entry(DefaultsEntry, data["defaults"], where, None, entries.defaults, problems)


def _validate_entry[EntryT: _Entry](
    model: type[EntryT],
    data: object,
    where: _Located,
    context: ValidationContext | None,
    valid: list[tuple[EntryT, _Located]],
    problems: list[Problem],
) -> bool:
    if not isinstance(data, dict):
        problems.append(
            Problem(where.parameter, where.entry, f"expected a mapping with {_FIELD_HINTS[model]}")
        )
        return False
    try:
        valid.append((model.model_validate(data, context=context), where))
    except ValidationError as exc:
        problems.extend(
            Problem(where.parameter, where.entry, _message(detail, model))
            for detail in exc.errors()
        )
        return False
    return True


def _item_lines(text: str) -> dict[tuple[str, int], int]:
    """Line of each item of the top-level 'rules' and 'images' lists, for error messages."""
    lines: dict[tuple[str, int], int] = {}
    root = yaml.compose(text)
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.SequenceNode):
                for index, item in enumerate(value.value):
                    lines[(key.value, index)] = item.start_mark.line + 1
    return lines


def _label(section: str, index: int, name: object, lines: dict[tuple[str, int], int]) -> str:
    label = f"{section}[{index}]"
    if isinstance(name, str):
        label += f" '{name}'"
    if (section, index) in lines:
        label += f" (line {lines[(section, index)]})"
    return label


_FIELD_HINTS: dict[type[BaseModel], str] = {
    RuleEntry: "prefix, upstream, credential, role, upstream_prefix",
    ImageEntry: "image, platforms, max_age",
    DefaultsEntry: "platforms, max_age",
}


def _message(detail: Any, model: type[BaseModel]) -> str:
    field_name = ".".join(str(part) for part in detail["loc"])
    kind = detail["type"]
    if kind == "value_error":
        return str(detail["ctx"]["error"])
    if kind == "extra_forbidden":
        return f"unknown field '{field_name}'; the fields are {_FIELD_HINTS[model]}"
    if kind == "missing":
        return f"'{field_name}' is missing; add it"
    return f"'{field_name}': {detail['msg'][0].lower()}{detail['msg'][1:]}"


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _merge(entries: _Entries, parameters: list[str], problems: list[Problem]) -> CacheConfig:
    rules = _merge_rules(entries.rules, problems)
    default_platforms, default_max_age = _merge_defaults(entries.defaults, problems)
    images: dict[str, tuple[CachedImage, _Located]] = {}
    for entry, where in entries.images:
        image = _resolve_image(
            entry,
            where,
            rules,
            entries.broken_prefixes if not entries.unreadable else None,
            default_platforms,
            default_max_age,
            problems,
        )
        if image is None:
            continue
        if image.reference in images:
            earlier, earlier_where = images[image.reference]
            if earlier.settings() != image.settings():
                problems.append(
                    Problem(
                        where.parameter,
                        where.entry,
                        f"'{image.reference}' is also listed in {earlier_where.parameter} "
                        f"({earlier_where.entry}) with other platforms or max_age; keep one entry",
                    )
                )
            continue
        images[image.reference] = (image, where)
    if not entries.rule_declared_in and not entries.unreadable:
        problems.append(
            Problem(
                ", ".join(parameters),
                "rules",
                "no parameter declares 'rules'; add a 'rules:' list (write 'rules: []' to remove "
                "every rule)",
            )
        )
    return CacheConfig(
        rules=tuple(rule for rule, _ in rules.values()),
        images=tuple(image for image, _ in images.values()),
        sources=tuple(parameters),
    )


def _merge_rules(
    entries: list[tuple[RuleEntry, _Located]], problems: list[Problem]
) -> dict[str, tuple[CacheRule, _Located]]:
    rules: dict[str, tuple[CacheRule, _Located]] = {}
    for entry, where in entries:
        upstream = resolve_upstream(entry.upstream)
        rule = CacheRule(
            prefix=entry.prefix,
            upstream_registry=upstream.kind.name,
            upstream_url=upstream.url,
            upstream_prefix=entry.upstream_prefix,
            credential=entry.credential,
            custom_role_arn=entry.role,
            source=where.parameter,
        )
        if rule.prefix not in rules:
            rules[rule.prefix] = (rule, where)
        elif rules[rule.prefix][0].definition() != rule.definition():
            earlier = rules[rule.prefix][1]
            problems.append(
                Problem(
                    where.parameter,
                    where.entry,
                    f"prefix '{rule.prefix}' is also defined in {earlier.parameter} "
                    f"({earlier.entry}) with another definition; keep one of them",
                )
            )
    if len(rules) > MAX_RULES:
        problems.append(
            Problem(
                ", ".join(sorted({where.parameter for _, where in rules.values()})),
                "rules",
                f"{len(rules)} rules; ECR allows at most {MAX_RULES} pull-through cache rules per "
                f"registry and Region, remove {len(rules) - MAX_RULES}",
            )
        )
    return rules


def _merge_defaults(
    entries: list[tuple[DefaultsEntry, _Located]], problems: list[Problem]
) -> tuple[tuple[str, ...], int]:
    chosen, chosen_where = entries[0] if entries else (DefaultsEntry(), None)
    for defaults, where in entries[1:]:
        if defaults != chosen and chosen_where is not None:
            problems.append(
                Problem(
                    where.parameter,
                    where.entry,
                    f"defaults are also set in {chosen_where.parameter} with other values; set "
                    "them in one parameter",
                )
            )
    return (
        chosen.platforms or DEFAULT_PLATFORMS,
        max_age_seconds(chosen.max_age or DEFAULT_MAX_AGE),
    )


def _resolve_image(
    entry: ImageEntry,
    where: _Located,
    rules: dict[str, tuple[CacheRule, _Located]],
    broken_prefixes: set[str] | None,
    default_platforms: tuple[str, ...],
    default_max_age: int,
    problems: list[Problem],
) -> CachedImage | None:
    reference = parse_reference(entry.image)
    rule = matching_rule(reference.repository, [rule for rule, _ in rules.values()])
    if rule is None:
        # None: some document was unreadable, so any prefix may be defined there.
        if broken_prefixes is not None and not any(
            reference.repository.startswith(f"{p}/") for p in broken_prefixes
        ):
            known = ", ".join(sorted(rules)) or "none yet"
            problems.append(
                Problem(
                    where.parameter,
                    where.entry,
                    f"'{entry.image}' matches no rule's prefix (prefixes: {known}); start it with "
                    "a rule's prefix, as in '<prefix>/<repository>:<tag>', or add a rule",
                )
            )
        return None
    path = (
        reference.repository
        if rule.prefix == "ROOT"
        else reference.repository.removeprefix(rule.prefix + "/")
    )
    if (
        rule.upstream_registry == "docker-hub"
        and rule.upstream_prefix == "ROOT"
        and "/" not in path
    ):
        fixed = ImageReference(
            repository=f"{rule.prefix}/library/{path}", tag=reference.tag, digest=reference.digest
        )
        problems.append(
            Problem(
                where.parameter,
                where.entry,
                f"Docker Hub official images live under 'library/'; write '{fixed}' instead of "
                f"'{entry.image}'",
            )
        )
        return None
    return CachedImage(
        reference=str(reference),
        repository=reference.repository,
        tag=reference.tag,
        digest=reference.digest,
        rule_prefix=rule.prefix,
        platforms=entry.platforms or default_platforms,
        max_age_seconds=max_age_seconds(entry.max_age) if entry.max_age else default_max_age,
        source=where.parameter,
    )


def matching_rule(repository: str, rules: Iterable[CacheRule]) -> CacheRule | None:
    """The rule whose prefix serves a repository: the longest prefix wins, ROOT last."""
    candidates = [
        rule for rule in rules if rule.prefix == "ROOT" or repository.startswith(rule.prefix + "/")
    ]
    return max(
        candidates,
        key=lambda rule: -1 if rule.prefix == "ROOT" else len(rule.prefix),
        default=None,
    )
