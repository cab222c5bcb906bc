"""The emulated ECR registry endpoint, <account>.dkr.ecr.<region>.amazonaws.com, and its
pull-through cache.

A Docker Registry HTTP API v2 pull server over HTTPS on loopback, with a CA and certificate made
here for the registry's own host name; Basic auth as ECR's GetAuthorizationToken hands it out
(user AWS). Cached repositories and images are moto's ECR (DescribeImages sees what a pull
cached, with digests that are the sha256 of the manifest bytes); blobs are kept in a store of
the emulation. Blob downloads are redirected, as ECR does, to a pre-signed URL of the layer
bucket host, which rejects a request that also carries the registry's Authorization header.

The pull-through cache, the point of it all. A pull by tag of `<rule prefix>/<repository>`:

- not cached yet: imported from the upstream catalog only if the puller's network has egress
  (a subnet whose route table has 0.0.0.0/0 to an available NAT gateway); ECR creates the
  repository (with the rule's repository creation template) and stores the index and every
  platform manifest;
- cached: served without egress; with egress the upstream is asked again, and a tag that moved
  there is imported anew (ECR re-checks at most once a day; here on every pull with egress);
- an upstream error for the image fails its first pull; a cached copy is served instead.

The puller's network is given per server: `PullThroughRegistry.serve(PullerNetwork(...))`
starts one endpoint for one puller (a build run, or `pull_image`), reading moto's EC2 of the
registry's account and Region at each request, so a route closed mid-build counts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import ssl
import string
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socket import socket
from typing import Any, cast
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from moto.ec2.exceptions import InvalidSubnetIdError
from moto.ec2.models import EC2Backend, ec2_backends
from moto.ec2.models.route_tables import Route, RouteTable
from moto.ecr.exceptions import ImageAlreadyExistsException
from moto.ecr.models import ECRBackend, Image, ecr_backends

from cache_pilot_local.ecr_pull_through_cache import (
    PullThroughCacheECRBackend,
    PullThroughCacheMatch,
    match_pull_through_cache_rule,
)
from cache_pilot_local.template import REPO_ROOT
from cache_pilot_local.upstream import Content, UpstreamCatalog, UpstreamError, UpstreamImage

LOOPBACK = "127.0.0.1"
ANYWHERE = "0.0.0.0/0"
REGISTRY_USER = "AWS"
HOSTS_VARIABLE = "CACHE_PILOT_EMULATED_HOSTS"
SHARED_LAYER_SOURCE = REPO_ROOT / "layers" / "shared"
PULL_TIMEOUT_SECONDS = 120.0
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_ROUTE = re.compile(r"/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<reference>[^/]+)")
_LAYER_PATH = re.compile(r"/(?P<registry>[0-9]{12})/(?P<hex>[a-f0-9]{64})")


def registry_host(account_id: str, region: str) -> str:
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com"


def layer_bucket_host(region: str) -> str:
    """Where ECR's pre-signed blob URLs point: its layer bucket in S3."""
    return f"prod-{region}-starport-layer-bucket.s3.{region}.amazonaws.com"


def registry_password(account_id: str) -> str:
    # What moto's GetAuthorizationToken encodes after "AWS:" (moto/ecr/responses.py).
    return f"{account_id}-auth-token"


# --- the puller's network --------------------------------------------------------------------


@dataclass(frozen=True)
class PullerNetwork:
    """Where a puller runs: the subnets of its VPC configuration, or None outside any VPC
    (a CodeBuild project without VpcConfig has AWS-managed internet access)."""

    subnet_ids: tuple[str, ...] | None

    @classmethod
    def of_subnets(cls, subnet_ids: Sequence[str] | None) -> PullerNetwork:
        return cls(None if subnet_ids is None else tuple(subnet_ids))

    def __str__(self) -> str:
        if self.subnet_ids is None:
            return "no VPC (AWS-managed internet access)"
        return "subnets " + ", ".join(self.subnet_ids) if self.subnet_ids else "no subnets"


@dataclass(frozen=True)
class Egress:
    allowed: bool
    reason: str


def egress_of(account_id: str, region: str, network: PullerNetwork) -> Egress:
    """Whether the puller reaches the internet: a subnet of it whose route table (its explicit
    association, else the VPC's main table) sends 0.0.0.0/0 to an available NAT gateway.

    A route to an internet gateway does not count: a build in a VPC has no public address.
    """
    if network.subnet_ids is None:
        return Egress(True, str(network))
    ec2 = ec2_backends[account_id][region]
    reasons = []
    for subnet_id in network.subnet_ids:
        allowed, reason = _subnet_egress(ec2, subnet_id)
        if allowed:
            return Egress(True, reason)
        reasons.append(reason)
    return Egress(False, "; ".join(reasons) or "the puller has no subnets")


def _subnet_egress(ec2: EC2Backend, subnet_id: str) -> tuple[bool, str]:
    try:
        subnet = ec2.get_subnet(subnet_id)
    except InvalidSubnetIdError:
        return False, f"subnet {subnet_id} does not exist"
    table = _route_table_of(ec2, subnet_id, subnet.vpc_id)
    if table is None:
        return False, f"subnet {subnet_id} has no route table"
    route = next((r for r in table.routes if r.destination_cidr_block == ANYWHERE), None)
    where = f"subnet {subnet_id} (route table {table.id})"
    if route is None:
        return False, f"{where} has no {ANYWHERE} route"
    if route.nat_gateway is None:
        return False, f"{where} sends {ANYWHERE} to {_route_target(route)}, not a NAT gateway"
    nat = ec2.nat_gateways.get(route.nat_gateway.id)
    state = nat.state if nat is not None else "deleted"
    if state != "available":
        return False, f"{where} sends {ANYWHERE} to NAT gateway {route.nat_gateway.id}, {state}"
    return True, f"{where} sends {ANYWHERE} to NAT gateway {route.nat_gateway.id}"


def _route_table_of(ec2: EC2Backend, subnet_id: str, vpc_id: str) -> RouteTable | None:
    tables = [table for table in ec2.route_tables.values() if table.vpc_id == vpc_id]
    for table in tables:
        if any(a.get("SubnetId") == subnet_id for a in table.associations):
            return table
    return next((table for table in tables if table.main_association_id is not None), None)


def _route_target(route: Route) -> str:
    if route.gateway is not None:
        return str(route.gateway.id)
    return "a target other than a NAT gateway"


# --- TLS -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    certificate_file: Path
    key_file: Path


def make_tls_files(directory: Path, host_names: Sequence[str]) -> TlsFiles:
    """A CA and a server certificate for `host_names` signed by it, as PEM files."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cache-pilot local registry CA")])
    ca = (
        _certificate_builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificate_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_names[0])])
    server = (
        _certificate_builder(server_name, ca_name, server_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificate_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in host_names]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certificate_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _certificate_builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, certificate_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not certificate_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificate_sign,
        crl_sign=certificate_sign,
        encipher_only=False,
        decipher_only=False,
    )


# --- the build network as Python sees it -------------------------------------------------------

# Imported by Python at start-up from PYTHONPATH: the registry's names resolve to its loopback
# port (TLS still checks the real name); any other name than loopback does not resolve, as from
# a private subnet, so that nothing run in a build reaches the real AWS or the internet.
_SITECUSTOMIZE = string.Template('''\
"""The emulated build network (written by cache_pilot_local.registry; do not edit)."""

import ipaddress
import json
import os
import socket

_PORTS = json.loads(os.environ.get("$variable", "{}"))
_getaddrinfo = socket.getaddrinfo


def _is_loopback(host):
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _getaddrinfo_in_the_build(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name in _PORTS and str(port) in ("443", "https"):
        return _getaddrinfo("127.0.0.1", _PORTS[name], *args, **kwargs)
    if name is not None and not _is_loopback(name):
        raise socket.gaierror(socket.EAI_NONAME, f"{name}: not reachable from the build")
    return _getaddrinfo(host, port, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo_in_the_build
''')


def write_network_module(directory: Path) -> Path:
    """Writes the sitecustomize of the build network into `directory`; returns it for
    PYTHONPATH."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(
        _SITECUSTOMIZE.substitute(variable=HOSTS_VARIABLE), encoding="utf-8"
    )
    return directory


# --- pull-through cache rules and storage ----------------------------------------------------


class _CacheStorage:
    """The cached repositories and images: moto's ECR of the registry's account and Region."""

    def __init__(self, account_id: str, region: str) -> None:
        self._account_id = account_id
        self._region = region

    def _backend(self) -> ECRBackend:
        return ecr_backends[self._account_id][self._region]

    def has_repository(self, repository: str) -> bool:
        return repository in self._backend().repositories

    def image(self, repository: str, reference: str) -> Content | None:
        found = self._backend().repositories.get(repository)
        if found is None:
            return None
        for image in list(found.images):
            if reference == image.get_image_digest() or reference in image.image_tags:
                return _content_of(image)
        return None

    def blob_digests(self, repository: str) -> set[str]:
        """The config and layer digests that the repository's image manifests name."""
        found = self._backend().repositories.get(repository)
        digests: set[str] = set()
        for image in list(found.images) if found is not None else []:
            document = json.loads(image.image_manifest)
            config = document.get("config")
            if isinstance(config, dict):
                digests.add(str(config.get("digest")))
            digests.update(str(layer.get("digest")) for layer in document.get("layers", []))
        return digests

    def store(self, repository: str, rule_prefix: str, image: UpstreamImage) -> bool:
        """Stores the index (tagged) and its manifests (untagged) as a pull-through import
        does; False when the repository refuses to move the tag (IMMUTABLE)."""
        backend = self._backend()
        if repository not in backend.repositories:
            cast(PullThroughCacheECRBackend, backend).create_pull_through_cache_repository(
                repository, rule_prefix
            )
        present = {cached.get_image_digest() for cached in backend.repositories[repository].images}
        for entry in image.entries:
            if entry.manifest.digest not in present:
                # A None tag stores an untagged image, as PutImage without imageTag does.
                backend.put_image(
                    repository,
                    entry.manifest.data.decode("ascii"),
                    None,  # type: ignore[arg-type]
                    entry.manifest.media_type,
                )
        try:
            backend.put_image(
                repository, image.index.data.decode("ascii"), image.tag, image.index.media_type
            )
        except ImageAlreadyExistsException:
            return False
        return True


def _content_of(image: Image) -> Content:
    media_type = image.image_manifest_media_type or json.loads(image.image_manifest).get(
        "mediaType", ""
    )
    return Content(str(media_type), image.image_manifest.encode("utf-8"))


class BlobStore:
    """Config and layer blobs the cache holds, by digest (ECR keeps them in its layer bucket)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[str, Content] = {}

    def put(self, blob: Content) -> None:
        with self._lock:
            self._blobs.setdefault(blob.digest, blob)

    def get(self, digest: str) -> Content | None:
        with self._lock:
            return self._blobs.get(digest)


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class _RegistryFailure(Exception):
    """An error answer in the registry's format: {"errors": [{"code", "message"}]}."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def reply(self) -> _Reply:
        body = json.dumps({"errors": [{"code": self.code, "message": self.message}]}).encode()
        return _Reply(self.status, {**self.headers, "Content-Type": "application/json"}, body)


class _RegistryService:
    """What one endpoint answers, for the puller network it was started for."""

    def __init__(self, registry: PullThroughRegistry, network: PullerNetwork) -> None:
        self._registry = registry
        self._network = network
        self._storage = _CacheStorage(registry.account_id, registry.region)
        self.log: list[str] = []

    def handle(self, method: str, host: str, target: str, headers: Mapping[str, str]) -> _Reply:
        """The answer to one request; `headers` by lowercase name."""
        path, _, query = target.partition("?")
        host = host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()
        try:
            if host == self._registry.layer_host:
                return self._layer(path, query, headers)
            if host != self._registry.host:
                raise _RegistryFailure(404, "NAME_UNKNOWN", f"no registry is named {host!r} here")
            self._check_authorization(headers.get("authorization"))
            if path in ("/v2/", "/v2"):
                return _Reply(200, {"Content-Type": "application/json"}, b"{}")
            route = _ROUTE.fullmatch(path)
            if route is None:
                raise _RegistryFailure(404, "NOT_FOUND", f"no such registry API route {path}")
            name, reference = route["name"], route["reference"]
            if route["kind"] == "manifests":
                return self._manifest(name, reference, headers.get("accept"))
            return self._blob(name, reference, head=method == "HEAD")
        except _RegistryFailure as failure:
            return failure.reply()

    def _check_authorization(self, header: str | None) -> None:
        expected = f"{REGISTRY_USER}:{registry_password(self._registry.account_id)}"
        scheme, _, token = (header or "").partition(" ")
        try:
            given = base64.b64decode(token.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            given = ""
        if scheme.lower() == "basic" and hmac.compare_digest(given, expected):
            return
        raise _RegistryFailure(
            401,
            "DENIED",
            "Your authorization token is invalid." if header else "Not Authorized",
            {
                "WWW-Authenticate": (
                    f'Basic realm="https://{self._registry.host}/",service="ecr.amazonaws.com"'
                )
            },
        )

    # -- manifests ------------------------------------------------------------------------

    def _manifest(self, repository: str, reference: str, accept: str | None) -> _Reply:
        with self._registry.import_lock:
            manifest = self._resolve(repository, reference)
        if not _accepts(accept, manifest.media_type):
            raise _RegistryFailure(
                404,
                "MANIFEST_UNKNOWN",
                f"the manifest is a {manifest.media_type}, which the Accept header does not "
                f"allow ({accept})",
            )
        return _Reply(
            200,
            {
                "Content-Type": manifest.media_type,
                "Docker-Content-Digest": manifest.digest,
                "Docker-Distribution-API-Version": "registry/2.0",
            },
            manifest.data,
        )

    def _resolve(self, repository: str, reference: str) -> Content:
        cached = self._storage.image(repository, reference)
        rule = match_pull_through_cache_rule(
            self._registry.account_id, self._registry.region, repository
        )
        if rule is None or _DIGEST.fullmatch(reference):
            # No rule: a plain repository. By digest: a first pull by digest does not fill
            # a pull-through cache (an open AWS issue), so only what is cached is served.
            if cached is not None:
                return cached
            raise self._not_found(repository)
        egress = egress_of(self._registry.account_id, self._registry.region, self._network)
        if not egress.allowed:
            if cached is not None:
                self._note(f"{repository}:{reference} served from the cache (no egress)")
                return cached
            self._note(f"{repository}:{reference} not imported: no egress: {egress.reason}")
            # ECR cannot import without the puller's egress, and what a client then sees is
            # the plain "not found" of an uncached image; the reason is in this log.
            raise _RegistryFailure(404, "MANIFEST_UNKNOWN", "Requested image not found")
        return self._through_upstream(repository, reference, rule, cached)

    def _through_upstream(
        self, repository: str, tag: str, rule: PullThroughCacheMatch, cached: Content | None
    ) -> Content:
        try:
            upstream = self._registry.catalog.lookup(
                rule.upstream_registry_url, rule.upstream_repository, tag
            )
        except UpstreamError as error:
            if cached is not None:
                self._note(f"{repository}:{tag} served from the cache: upstream said {error}")
                return cached
            self._note(f"{repository}:{tag} not imported: upstream said {error}")
            failure = error.failure
            raise _RegistryFailure(failure.status, failure.code, failure.message) from None
        if cached is not None and cached.digest == upstream.digest:
            return cached
        for blob in upstream.blobs:
            self._registry.blobs.put(blob)
        stored = self._storage.store(repository, rule.prefix, upstream)
        if not stored and cached is not None:
            self._note(f"{repository}:{tag} moved upstream but the repository is IMMUTABLE")
            return cached
        verb = "re-imported (the tag moved upstream)" if cached else "imported"
        self._note(
            f"{repository}:{tag} {verb} from {rule.upstream_registry_url}/"
            f"{rule.upstream_repository}: {upstream.digest}"
        )
        return upstream.index

    def _not_found(self, repository: str) -> _RegistryFailure:
        if self._storage.has_repository(repository):
            return _RegistryFailure(404, "MANIFEST_UNKNOWN", "Requested image not found")
        return _RegistryFailure(
            404,
            "NAME_UNKNOWN",
            f"The repository with name '{repository}' does not exist in the registry with id "
            f"'{self._registry.account_id}'",
        )

    # -- blobs ----------------------------------------------------------------------------

    def _blob(self, repository: str, digest: str, *, head: bool) -> _Reply:
        if not _DIGEST.fullmatch(digest):
            raise _RegistryFailure(400, "DIGEST_INVALID", f"{digest!r} is not a sha256 digest")
        if not self._storage.has_repository(repository):
            raise self._not_found(repository)
        blob = self._registry.blobs.get(digest)
        if blob is None or digest not in self._storage.blob_digests(repository):
            raise _RegistryFailure(
                404, "BLOB_UNKNOWN", f"Layer with digest '{digest}' does not exist"
            )
        if head:
            return _Reply(
                200,
                {
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(blob.size),
                    "Docker-Content-Digest": digest,
                },
            )
        return _Reply(307, {"Location": self._registry.layer_url(digest), "Content-Length": "0"})

    def _layer(self, path: str, query: str, headers: Mapping[str, str]) -> _Reply:
        if headers.get("authorization"):
            return _s3_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified",
            )
        match = _LAYER_PATH.fullmatch(path)
        signature = parse_qs(query).get("X-Amz-Signature", [""])[0]
        digest = f"sha256:{match['hex']}" if match else ""
        if match is None or not self._registry.signature_matches(digest, signature):
            return _s3_error(403, "AccessDenied", "Access Denied")
        blob = self._registry.blobs.get(digest)
        if blob is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return _Reply(
            200,
            {"Content-Type": "application/octet-stream", "ETag": f'"{digest[7:39]}"'},
            blob.data,
        )

    def _note(self, line: str) -> None:
        self.log.append(line)


def _accepts(accept: str | None, media_type: str) -> bool:
    if not accept:
        return True  # lenient: a client that names nothing gets what is stored
    accepted = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return media_type in accepted or "*/*" in accepted


def _s3_error(status: int, code: str, message: str) -> _Reply:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return _Reply(status, {"Content-Type": "application/xml"}, body)


# --- HTTP ------------------------------------------------------------------------------------


class _RegistryServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, service: _RegistryService, tls: ssl.SSLContext) -> None:
        super().__init__((LOOPBACK, 0), _RegistryRequestHandler)
        self.service = service
        self._tls = tls

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens in the request's own thread, never in the accept loop.
        try:
            secure = self._tls.wrap_socket(cast(socket, request), server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.service.log.append(f"TLS handshake from {client_address} failed: {error}")
            return
        super().finish_request(secure, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        self.service.log.append(f"connection from {client_address} ended: {error!r}")


class _RegistryRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _RegistryServer

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def _answer(self) -> None:
        # By lowercase name; a header sent more than once counts as its values joined.
        headers = {
            name.lower(): ", ".join(self.headers.get_all(name) or []) for name in self.headers
        }
        reply = self.server.service.handle(
            self.command, self.headers.get("Host", ""), self.path, headers
        )
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if "Content-Length" not in reply.headers:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.service.log.append(format % args)


# --- the registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryEndpoint:
    """One running endpoint of the registry, for one puller network."""

    host: str
    layer_host: str
    port: int
    ca_file: Path
    network: PullerNetwork
    python_path: Path  # holds the sitecustomize that makes `host` resolve to `port`
    log: list[str]

    @property
    def ports(self) -> dict[str, int]:
        return {self.host: self.port, self.layer_host: self.port}

    def program_environment(self) -> dict[str, str]:
        """What a Python process on this network needs besides PYTHONPATH: the names it
        reaches on loopback, and the CA that signed the registry's certificate."""
        return {HOSTS_VARIABLE: json.dumps(self.ports), "SSL_CERT_FILE": str(self.ca_file)}


@dataclass(frozen=True)
class PullResult:
    """One image pulled from a subnet by the warm-up program (`cache_pilot.warm`)."""

    reference: str
    network: PullerNetwork
    pulled: bool
    digest: str | None  # what the tag resolved to, as DescribeImages reports it
    error: str | None
    exit_status: int
    output: tuple[str, ...]  # the warm-up program's lines
    registry_log: tuple[str, ...]
    report: dict[str, Any] | None


class PullThroughRegistry:
    """The registry of one account and Region; `serve` starts an endpoint per puller.

    The blob store and the TLS material live as long as this object; `close()` removes its
    working directory when it made one itself.
    """

    def __init__(
        self,
        account_id: str,
        region: str,
        catalog: UpstreamCatalog,
        *,
        endpoint_url: str | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.catalog = catalog
        self.endpoint_url = endpoint_url
        self.blobs = BlobStore()
        self.import_lock = threading.Lock()
        self._owned_dir = None if work_dir else tempfile.TemporaryDirectory(prefix="registry-")
        self.work_dir = work_dir or Path(self._owned_dir.name)  # type: ignore[union-attr]
        self.tls = make_tls_files(self._ensure_dir("tls"), [self.host, self.layer_host])
        self.python_path = write_network_module(self.work_dir / "network")
        self._server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_context.load_cert_chain(self.tls.certificate_file, self.tls.key_file)
        self._signing_key = secrets.token_bytes(32)

    @property
    def host(self) -> str:
        return registry_host(self.account_id, self.region)

    @property
    def layer_host(self) -> str:
        return layer_bucket_host(self.region)

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    def close(self) -> None:
        if self._owned_dir is not None:
            self._owned_dir.cleanup()

    def __enter__(self) -> PullThroughRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def serve(self, network: PullerNetwork) -> Iterator[RegistryEndpoint]:
        service = _RegistryService(self, network)
        server = _RegistryServer(service, self._server_context)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield RegistryEndpoint(
                host=self.host,
                layer_host=self.layer_host,
                port=server.server_address[1],
                ca_file=self.ca_file,
                network=network,
                python_path=self.python_path,
                log=service.log,
            )
        finally:
            server.shutdown()
            server.server_close()
            thread.join()

    def layer_url(self, digest: str) -> str:
        """A pre-signed URL of the blob on the layer bucket host."""
        return (
            f"https://{self.layer_host}/{self.account_id}/{digest.removeprefix('sha256:')}"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600"
            f"&X-Amz-Signature={self._signature(digest)}"
        )

    def signature_matches(self, digest: str, signature: str) -> bool:
        return hmac.compare_digest(self._signature(digest), signature)

    def _signature(self, digest: str) -> str:
        return hmac.new(self._signing_key, digest.encode(), hashlib.sha256).hexdigest()

    def pull_image(
        self,
        reference: str,
        *,
        subnet_ids: Sequence[str] | None,
        platforms: Sequence[str] = ("all",),
        timeout: float = PULL_TIMEOUT_SECONDS,
    ) -> PullResult:
        """Pulls one image from the given subnets (None: from outside any VPC) by running the
        warm-up program on it, as a build would, and reports what happened."""
        if self.endpoint_url is None:
            raise ValueError(
                "pull_image runs the warm-up program with --ecr-auth, which needs the embedded "
                "AWS: construct PullThroughRegistry with endpoint_url"
            )
        network = PullerNetwork.of_subnets(subnet_ids)
        with (
            tempfile.TemporaryDirectory(dir=self.work_dir, prefix="pull-") as scratch,
            self.serve(network) as endpoint,
        ):
            batch, report = Path(scratch) / "batch.json", Path(scratch) / "report.json"
            batch.write_text(
                json.dumps({"images": [{"reference": reference, "platforms": list(platforms)}]})
            )
            done = subprocess.run(
                [
                    *warm_program_command(self.host, self.region, batch, report),
                    *("--parallel", "4"),
                ],
                env=self._pull_environment(endpoint, Path(scratch)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )
            document = json.loads(report.read_text()) if report.exists() else None
            return _pull_result(reference, network, done, document, endpoint.log)

    def _pull_environment(self, endpoint: RegistryEndpoint, home: Path) -> dict[str, str]:
        assert self.endpoint_url is not None
        return {
            "PATH": os.defpath,
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([str(SHARED_LAYER_SOURCE), str(endpoint.python_path)]),
            **endpoint.program_environment(),
            **aws_sdk_environment(self.endpoint_url, self.region),
        }

    def _ensure_dir(self, name: str) -> Path:
        directory = self.work_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        return directory


def warm_program_command(registry: str, region: str, batch: Path, report: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cache_pilot.warm",
        *("--registry", registry),
        *("--ecr-auth", region),
        *("--batch", str(batch)),
        *("--report", str(report)),
    ]


def embedded_aws_credentials() -> tuple[str, str]:
    """The fake access key id and secret key the embedded AWS is used with."""
    # Imported here: server.py installs the emulation, whose builds.py imports this module.
    from cache_pilot_local.server import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY

    return FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY


def aws_sdk_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """What an AWS SDK in a child process needs to reach the embedded AWS, and only it."""
    access_key_id, secret_access_key = embedded_aws_credentials()
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _pull_result(
    reference: str,
    network: PullerNetwork,
    done: subprocess.CompletedProcess[str],
    report: dict[str, Any] | None,
    registry_log: list[str],
) -> PullResult:
    images = report.get("images", []) if report else []
    image = images[0] if images else {}
    error = image.get("error") or (report or {}).get("error")
    return PullResult(
        reference=reference,
        network=network,
        pulled=done.returncode == 0 and bool(image.get("warmed")),
        digest=image.get("digest"),
        error=None if error is None else f"{error['kind']}: {error['message']}",
        exit_status=done.returncode,
        output=tuple(done.stdout.splitlines()),
        registry_log=tuple(registry_log),
        report=report,
    )
