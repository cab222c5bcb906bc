"""HTTP to a registry with http.client: keep-alive connections per thread, the registry's
authentication (Basic, or Bearer tokens from the realm it names), redirects that never carry
the registry's credentials to another host, and bounded retries of 429, 5xx and network errors.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import random
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from cache_pilot.warm.report import ErrorKind

USER_AGENT = "cache-pilot-warm/1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
MAX_ERROR_BODY = 64 * 1024
TOKEN_LIFETIME_DEFAULT = 60.0  # seconds, when a token response gives no expires_in
TOKEN_RENEW_MARGIN = 10.0

Result = TypeVar("Result")


class TransportFailure(Exception):
    """A request that failed for good; ``kind`` says how (an :class:`ErrorKind`)."""

    def __init__(self, kind: ErrorKind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


class CredentialsRejected(Exception):
    """The registry or its token service refused the credentials: nothing else can work."""


class RetryableStatus(Exception):
    def __init__(self, status: int, retry_after: float | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class TransientNetworkError(Exception):
    """A connection failure, timeout or cut-off body: worth another attempt."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; ``Retry-After`` wins but is capped at ``max_delay``."""

    attempts: int = 6
    first_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        backoff = min(self.first_delay * 2.0 ** (attempt - 1), self.max_delay)
        return backoff * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercase: "basic" or "bearer"
    parameters: dict[str, str]


_CHALLENGE_PARAMETER = re.compile(
    r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?'
)


def parse_challenge(header: str | None) -> Challenge | None:
    """The first challenge of a WWW-Authenticate header, e.g.
    ``Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"``."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    parameters: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _CHALLENGE_PARAMETER.match(rest, position)
        if match is None or match.end() == position:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
        parameters[match.group(1).lower()] = value
        position = match.end()
    return Challenge(scheme=scheme.lower(), parameters=parameters)


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self, target: str) -> str:
        return f"{self.scheme}://{self.netloc}{target}"


def split_url(url: str) -> tuple[Origin, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportFailure(ErrorKind.REGISTRY_ERROR, f"cannot follow the URL {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Origin(parts.scheme, parts.hostname.lower(), port), target


def registry_origin(registry: str, *, secure: bool) -> Origin:
    scheme = "https" if secure else "http"
    origin, target = split_url(f"{scheme}://{registry}")
    if target != "/":
        raise ValueError(f"--registry takes HOST[:PORT], not a URL with a path: {registry!r}")
    return origin


def registry_error_summary(body: bytes) -> str:
    """The registry's own error codes and messages from an error body, if it has them."""
    try:
        errors = json.loads(body).get("errors")
        return "; ".join(f"{error['code']} {error.get('message', '')}".strip() for error in errors)
    except (ValueError, AttributeError, TypeError, KeyError):
        return body[:200].decode(errors="replace").strip()


class Authenticator:
    """Answers the registry's challenges: Basic with the credentials, or Bearer tokens fetched
    from the realm per repository scope (cached until they expire)."""

    def __init__(self, session: RegistrySession, credentials: Credentials | None) -> None:
        self._session = session
        self._credentials = credentials
        self._lock = threading.Lock()
        self._scheme: str | None = None
        self._realm: str | None = None
        self._service: str | None = None
        self._tokens: dict[str | None, tuple[str, float]] = {}

    def header(self, repository: str | None) -> str | None:
        if self._scheme == "basic" and self._credentials is not None:
            return self._credentials.basic_header()
        if self._scheme == "bearer":
            return f"Bearer {self._token(_pull_scope(repository))}"
        return None

    def answer(self, challenge_header: str | None, repository: str | None) -> None:
        """Prepares what the next attempt sends after a 401 from the registry."""
        challenge = parse_challenge(challenge_header)
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            raise TransportFailure(
                ErrorKind.UNAUTHORIZED,
                f"the registry answered 401 with an unsupported challenge {challenge_header!r}",
                401,
            )
        if challenge.scheme == "basic":
            if self._credentials is None:
                raise CredentialsRejected(
                    "the registry requires credentials: pass --username with --password-stdin, "
                    "or --ecr-auth REGION"
                )
            self._scheme = "basic"
            return
        realm = challenge.parameters.get("realm")
        if not realm:
            raise TransportFailure(ErrorKind.UNAUTHORIZED, "Bearer challenge without realm", 401)
        with self._lock:
            self._scheme, self._realm = "bearer", realm
            self._service = challenge.parameters.get("service")
            self._tokens.pop(_pull_scope(repository), None)

    def _token(self, scope: str | None) -> str:
        with self._lock:
            cached = self._tokens.get(scope)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            token, lifetime = self._fetch_token(scope)
            self._tokens[scope] = (token, time.monotonic() + lifetime - TOKEN_RENEW_MARGIN)
            return token

    def _fetch_token(self, scope: str | None) -> tuple[str, float]:
        assert self._realm is not None
        query = {
            key: value for key, value in (("service", self._service), ("scope", scope)) if value
        }
        separator = "&" if "?" in self._realm else "?"
        url = self._realm + (separator + urllib.parse.urlencode(query) if query else "")
        authorization = self._credentials.basic_header() if self._credentials else None
        status, body = self._session.fetch_small(url, authorization)
        if status in (401, 403):
            raise self.rejection(f"the token service {self._realm}")
        if status != 200:
            raise TransportFailure(
                ErrorKind.UNAUTHORIZED,
                f"the token service {self._realm} answered HTTP {status}: "
                f"{registry_error_summary(body)}",
                status,
            )
        try:
            document = json.loads(body)
            token = document.get("token") or document.get("access_token")
            lifetime = float(document.get("expires_in") or TOKEN_LIFETIME_DEFAULT)
        except (ValueError, AttributeError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise TransportFailure(
                ErrorKind.UNAUTHORIZED, f"the token service {self._realm} returned no token"
            )
        return token, max(lifetime, TOKEN_RENEW_MARGIN + 1)

    def rejection(self, who: str) -> CredentialsRejected:
        if self._credentials is None:
            return CredentialsRejected(f"{who} refused anonymous access (HTTP 401)")
        return CredentialsRejected(
            f"{who} rejected the credentials of user {self._credentials.username!r} (HTTP 401): "
            "check the password (--password-stdin) or the ECR authorization token"
        )


def _pull_scope(repository: str | None) -> str | None:
    return f"repository:{repository}:pull" if repository else None


@dataclass
class _PooledConnection:
    connection: http.client.HTTPConnection
    requests: int = 0


class RegistrySession:
    """Requests to one registry. Thread-safe: each thread keeps its own connections."""

    def __init__(
        self,
        registry: str,
        *,
        secure: bool = True,
        credentials: Credentials | None = None,
        ca_file: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.origin = registry_origin(registry, secure=secure)
        self.registry = registry
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._sleep = sleep
        self._ssl_context = ssl.create_default_context()
        if ca_file:
            self._ssl_context.load_verify_locations(cafile=ca_file)
        self._local = threading.local()
        self._auth = Authenticator(self, credentials)

    # -- connections ------------------------------------------------------------------------

    def _pool(self) -> dict[Origin, _PooledConnection]:
        pool: dict[Origin, _PooledConnection] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def _connection(self, origin: Origin) -> _PooledConnection:
        pool = self._pool()
        pooled = pool.get(origin)
        if pooled is None:
            connection: http.client.HTTPConnection
            if origin.scheme == "https":
                connection = http.client.HTTPSConnection(
                    origin.host, origin.port, timeout=self._timeout, context=self._ssl_context
                )
            else:
                connection = http.client.HTTPConnection(
                    origin.host, origin.port, timeout=self._timeout
                )
            pooled = pool[origin] = _PooledConnection(connection)
        return pooled

    def _discard(self, origin: Origin) -> None:
        pooled = self._pool().pop(origin, None)
        if pooled is not None:
            pooled.connection.close()

    def close(self) -> None:
        """Closes the calling thread's connections."""
        for origin in list(self._pool()):
            self._discard(origin)

    def _send(
        self, origin: Origin, target: str, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        for _ in range(2):
            pooled = self._connection(origin)
            reused = pooled.requests > 0
            try:
                pooled.connection.request("GET", target, headers=headers)
                response = pooled.connection.getresponse()
            except ssl.SSLCertVerificationError as error:
                self._discard(origin)
                raise TransportFailure(
                    ErrorKind.NETWORK_ERROR,
                    f"TLS verification of {origin.netloc} failed: {error.verify_message}"
                    " (pass --ca-file for a private CA)",
                ) from None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._discard(origin)
                if reused:
                    continue  # the server closed an idle keep-alive connection: reconnect once
                raise TransientNetworkError(f"{origin.netloc} closed the connection") from None
            except (OSError, http.client.HTTPException) as error:
                self._discard(origin)
                raise TransientNetworkError(f"{origin.netloc}: {error!r}") from None
            pooled.requests += 1
            return response
        raise AssertionError("unreachable")

    def _finish(self, origin: Origin, response: http.client.HTTPResponse) -> None:
        """Keeps the connection only when the response was read to its end."""
        if not response.isclosed() or response.will_close:
            self._discard(origin)

    def _read_error_body(self, origin: Origin, response: http.client.HTTPResponse) -> bytes:
        try:
            body = response.read(MAX_ERROR_BODY)
        except (OSError, http.client.HTTPException):
            body = b""
        self._finish(origin, response)
        return body

    # -- requests ---------------------------------------------------------------------------

    def call(self, operation: Callable[[], Result], what: str) -> Result:
        """Runs ``operation`` (requests and reading their bodies), retrying 429, 5xx and
        network errors with backoff; the last failure becomes a TransportFailure."""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return operation()
            except RetryableStatus as failure:
                if attempt == self.retry.attempts:
                    raise TransportFailure(
                        ErrorKind.REGISTRY_ERROR,
                        f"{what}: {failure} (gave up after {attempt} attempts)",
                        failure.status,
                    ) from None
                self._sleep(self.retry.delay(attempt, failure.retry_after))
            except TransientNetworkError as failure:
                if attempt == self.retry.attempts:
                    raise TransportFailure(
                        ErrorKind.NETWORK_ERROR,
                        f"{what}: {failure} (gave up after {attempt} attempts)",
                    ) from None
                self._sleep(self.retry.delay(attempt, None))
        raise AssertionError("unreachable")

    @contextmanager
    def get(
        self, path: str, *, repository: str | None, accept: str | None = None
    ) -> Iterator[http.client.HTTPResponse]:
        """GETs ``path`` on the registry and yields the 2xx response to read from.

        Redirects are followed; the Authorization header goes to the registry's own origin
        only (a pre-signed storage URL must not see it, and S3 rejects requests that carry
        both). A 401 is answered once per request; credentials rejected outright raise
        CredentialsRejected. Errors reading the body inside the block become
        TransientNetworkError, so that ``call`` retries them.
        """
        origin, target = self.origin, path
        answered_challenge = False
        for _ in range(MAX_REDIRECTS + 2):
            headers = {"User-Agent": USER_AGENT}
            if accept:
                headers["Accept"] = accept
            authorization = None
            if origin == self.origin:
                authorization = self._auth.header(repository)
                if authorization:
                    headers["Authorization"] = authorization
            response = self._send(origin, target, headers)
            status = response.status
            if 200 <= status < 300:
                try:
                    yield response
                except (OSError, http.client.HTTPException) as error:
                    self._discard(origin)
                    raise TransientNetworkError(
                        f"reading {origin.url(target)}: {error!r}"
                    ) from None
                finally:
                    self._finish(origin, response)
                return
            body = self._read_error_body(origin, response)
            if status in REDIRECT_STATUSES:
                location = response.getheader("Location")
                if not location:
                    raise TransportFailure(
                        ErrorKind.REGISTRY_ERROR, f"HTTP {status} without Location", status
                    )
                origin, target = split_url(urllib.parse.urljoin(origin.url(target), location))
                continue
            if status == 401 and origin == self.origin:
                if authorization is not None and authorization.startswith("Basic "):
                    raise self._auth.rejection("the registry")
                if not answered_challenge:
                    self._auth.answer(response.getheader("WWW-Authenticate"), repository)
                    answered_challenge = True
                    continue
            message = f"HTTP {status} from {origin.url(target)}: {registry_error_summary(body)}"
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(response.getheader("Retry-After"))
                raise RetryableStatus(status, retry_after, message)
            if status == 404:
                raise TransportFailure(ErrorKind.NOT_FOUND, message, status)
            if status in (401, 403):
                raise TransportFailure(ErrorKind.UNAUTHORIZED, message, status)
            raise TransportFailure(ErrorKind.REGISTRY_ERROR, message, status)
        raise TransportFailure(
            ErrorKind.REGISTRY_ERROR, f"more than {MAX_REDIRECTS} redirects for {path}"
        )

    def fetch_small(self, url: str, authorization: str | None) -> tuple[int, bytes]:
        """One GET of a small document (a token), whatever its status; 429 and 5xx raise
        RetryableStatus for the enclosing ``call``."""
        origin, target = split_url(url)
        headers = {"User-Agent": USER_AGENT}
        if authorization:
            headers["Authorization"] = authorization
        response = self._send(origin, target, headers)
        try:
            body = response.read(MAX_ERROR_BODY)
        except (OSError, http.client.HTTPException) as error:
            self._discard(origin)
            raise TransientNetworkError(f"reading {url}: {error!r}") from None
        self._finish(origin, response)
        if response.status == 429 or response.status >= 500:
            retry_after = parse_retry_after(response.getheader("Retry-After"))
            raise RetryableStatus(
                response.status, retry_after, f"HTTP {response.status} from {url}"
            )
        return response.status, body

    def check_access(self) -> None:
        """GET /v2/: proves the registry is reachable and accepts the credentials, before
        any image is attempted."""

        def ping() -> None:
            with self.get("/v2/", repository=None) as response:
                response.read(MAX_ERROR_BODY)

        self.call(ping, f"checking {self.registry}")
