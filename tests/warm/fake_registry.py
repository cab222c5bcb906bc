"""A small in-memory registry on loopback (stdlib http.server) for what a real registry will
not do on demand: answer 429 or 5xx, cut a body short, redirect blobs to another host, or
hand out Bearer tokens. It records every request it sees."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.warm.registry_harness import LOOPBACK, sha256_digest

_ROUTE = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<reference>[^/]+)$")
SECOND_LOOPBACK = "127.0.0.2"  # another host name for redirect targets, still on loopback


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    status: int
    at: float


@dataclass
class Fault:
    """A planned answer instead of the real one: ``status`` with ``headers``, or with
    ``cut_after`` set, a 200 whose body stops after that many bytes."""

    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None


@dataclass
class _Repository:
    tags: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)


class FakeRegistry:
    """``auth`` is None, "basic" or "bearer" (tokens from its own /token realm)."""

    def __init__(
        self,
        *,
        auth: str | None = None,
        username: str = "warm",
        password: str = "secret",
        host: str = LOOPBACK,
    ) -> None:
        self.auth = auth
        self.username, self.password = username, password
        self.repositories: dict[str, _Repository] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.requests: list[RecordedRequest] = []
        self.blob_redirect: str | None = None  # base URL of a BlobHost
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))

    @property
    def host(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> FakeRegistry:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # The pusher interface of the image seeder, straight into memory.
    def push_blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        with self._lock:
            self.repositories.setdefault(repository, _Repository()).blobs[digest] = data
        return digest

    def push_manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> str:
        digest = sha256_digest(body)
        with self._lock:
            stored = self.repositories.setdefault(repository, _Repository())
            stored.manifests[digest] = (media_type, body)
            if not reference.startswith("sha256:"):
                stored.tags[reference] = digest
        return digest

    def plan(self, path: str, *faults: Fault) -> None:
        """The next requests for ``path`` get ``faults``, one each, then the real answer."""
        with self._lock:
            self.faults.setdefault(path, []).extend(faults)

    def replace_blob(self, repository: str, digest: str, content: bytes) -> None:
        with self._lock:
            self.repositories[repository].blobs[digest] = content

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def find_blob(self, digest: str) -> bytes | None:
        with self._lock:
            for repository in self.repositories.values():
                if digest in repository.blobs:
                    return repository.blobs[digest]
        return None

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            planned = self.faults.get(path)
            return planned.pop(0) if planned else None

    def _record(self, handler: BaseHTTPRequestHandler, status: int) -> None:
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=handler.command,
                    path=urlsplit(handler.path).path,
                    headers={key.lower(): value for key, value in handler.headers.items()},
                    status=status,
                    at=time.monotonic(),
                )
            )

    def _authorized(self, header: str | None, repository: str | None) -> bool:
        if self.auth is None:
            return True
        if header is None:
            return False
        if self.auth == "basic":
            return header == _basic(self.username, self.password)
        scheme, _, token = header.partition(" ")
        return scheme == "Bearer" and token in (_token_for(None), _token_for(repository))

    def _challenge(self, repository: str | None) -> str:
        if self.auth == "basic":
            return 'Basic realm="fake-registry"'
        scope = f',scope="repository:{repository}:pull"' if repository else ""
        return f'Bearer realm="{self.url}/token",service="fake-registry"{scope}'


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _token_for(repository: str | None) -> str:
    return f"token-for-{repository or 'registry'}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "fake-registry/1"

    @property
    def fake(self) -> FakeRegistry:
        fake: FakeRegistry = self.server.fake  # type: ignore[attr-defined]
        return fake

    def log_message(self, format: str, *args: object) -> None:  # quiet tests
        return

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        cut_after: int | None = None,
    ) -> None:
        self.fake._record(self, status)
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if cut_after is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body if cut_after is None else body[:cut_after])
        if cut_after is not None:
            self.close_connection = True

    def _error(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/token":
            return self._token()
        if path.startswith("/storage/"):
            return self._error(HTTPStatus.NOT_FOUND, "NOT_STORAGE")
        route = _ROUTE.match(path)
        repository = route.group("name") if route else None
        if not self.fake._authorized(self.headers.get("Authorization"), repository):
            return self._error(
                HTTPStatus.UNAUTHORIZED,
                "UNAUTHORIZED",
                {"WWW-Authenticate": self.fake._challenge(repository)},
            )
        fault = self.fake._next_fault(path)
        if fault is not None and fault.cut_after is None:
            return self._error(fault.status, "PLANNED_FAULT", fault.headers)
        if path == "/v2/":
            return self._send(HTTPStatus.OK, b"{}", {"Content-Type": "application/json"})
        if route is None or repository is None:
            return self._error(HTTPStatus.NOT_FOUND, "NOT_FOUND")
        stored = self.fake.repositories.get(repository)
        if stored is None:
            return self._error(HTTPStatus.NOT_FOUND, "NAME_UNKNOWN")
        reference = route.group("reference")
        cut_after = fault.cut_after if fault else None
        if route.group("kind") == "manifests":
            digest = stored.tags.get(reference, reference)
            if digest not in stored.manifests:
                return self._error(HTTPStatus.NOT_FOUND, "MANIFEST_UNKNOWN")
            media_type, body = stored.manifests[digest]
            headers = {"Content-Type": media_type, "Docker-Content-Digest": digest}
            return self._send(HTTPStatus.OK, body, headers, cut_after)
        if reference not in stored.blobs:
            return self._error(HTTPStatus.NOT_FOUND, "BLOB_UNKNOWN")
        if self.fake.blob_redirect:
            location = f"{self.fake.blob_redirect}/storage/{reference}?X-Amz-Signature=fake"
            return self._send(HTTPStatus.TEMPORARY_REDIRECT, b"", {"Location": location})
        blob = stored.blobs[reference]
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": reference}
        return self._send(HTTPStatus.OK, blob, headers, cut_after)

    def _token(self) -> None:
        if self.headers.get("Authorization") != _basic(self.fake.username, self.fake.password):
            return self._error(HTTPStatus.UNAUTHORIZED, "UNAUTHORIZED")
        scope = parse_qs(urlsplit(self.path).query).get("scope", [""])[0]
        repository = scope.split(":")[1] if scope.count(":") == 2 else None
        body = json.dumps({"token": _token_for(repository), "expires_in": 300}).encode()
        return self._send(HTTPStatus.OK, body, {"Content-Type": "application/json"})


class BlobHost:
    """Stands in for object storage behind a registry's redirects (S3 behind ECR): serves the
    blobs of a FakeRegistry at /storage/<digest> on another host and records the headers."""

    def __init__(self, registry: FakeRegistry, host: str = SECOND_LOOPBACK) -> None:
        self.registry = registry
        self.requests: list[RecordedRequest] = []
        self._server = ThreadingHTTPServer((host, 0), _BlobHandler)
        self._server.daemon_threads = True
        self._server.blob_host = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> BlobHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _BlobHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        blob_host: BlobHost = self.server.blob_host  # type: ignore[attr-defined]
        digest = urlsplit(self.path).path.removeprefix("/storage/")
        blob = blob_host.registry.find_blob(digest)
        status = HTTPStatus.OK if blob is not None else HTTPStatus.NOT_FOUND
        blob_host.requests.append(
            RecordedRequest(
                method=self.command,
                path=urlsplit(self.path).path,
                headers={key.lower(): value for key, value in self.headers.items()},
                status=status,
                at=time.monotonic(),
            )
        )
        body = blob or b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def running(registry: FakeRegistry) -> Iterator[FakeRegistry]:
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()
