"""Real registries on loopback for the warm-up tests and the benchmark.

Runs Debian's ``docker-registry`` (the CNCF distribution registry) as a plain upstream and as a
TLS, basic-auth pull-through proxy of it, seeds the upstream with generated multi-platform
images over the registry HTTP API, and pulls images back with a client of its own, so that
what the tests verify does not depend on the code under test.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cache_pilot.warm.report import ImageResult, WarmReport, load_report
from cache_pilot_local.upstream import Platform

REGISTRY_BINARY = "docker-registry"
LOOPBACK = "127.0.0.1"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})


def registry_binary() -> str | None:
    return shutil.which(REGISTRY_BINARY)


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- TLS and credentials -------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    ca_certificate: Path
    server_certificate: Path
    server_key: Path

    @property
    def ca_directory(self) -> Path:
        """A directory holding only the CA as ``ca.crt`` (what skopeo's --src-cert-dir reads)."""
        return self.ca_certificate.parent


def make_tls_material(directory: Path) -> TlsMaterial:
    """A throw-away CA and a server certificate for 127.0.0.1, made with the openssl CLI.

    The extensions satisfy Python's VERIFY_X509_STRICT (key identifiers, key usage), which
    ssl.create_default_context enables from Python 3.13 on.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make the test CA")
    ca_dir = directory / "ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    server_dir = directory / "server"
    server_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = server_dir / "ca.key", ca_dir / "ca.crt"
    key, csr, cert = server_dir / "server.key", server_dir / "server.csr", server_dir / "server.crt"
    extensions = server_dir / "server.ext"
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        [openssl, "req", "-x509", *ec_key, "-keyout", ca_key, "-out", ca_cert, "-days", "3",
         "-subj", "/CN=cache-pilot test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *ec_key, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
         "-CAcreateserial", "-out", cert, "-days", "3", "-extfile", extensions],
    ]  # fmt: skip
    for command in commands:
        subprocess.run([str(part) for part in command], check=True, capture_output=True)
    return TlsMaterial(ca_certificate=ca_cert, server_certificate=cert, server_key=key)


def bcrypt_htpasswd_line(username: str, password: str) -> str | None:
    """An htpasswd line with a bcrypt hash (the only kind the registry accepts), or None."""
    try:
        import bcrypt
    except ImportError:
        htpasswd = shutil.which("htpasswd")
        if htpasswd is None:
            return None
        done = subprocess.run(
            [htpasswd, "-nbB", username, password], check=True, capture_output=True, text=True
        )
        return done.stdout.strip()
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{username}:{hashed}"


def basic_authorization(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# --- the registry processes ----------------------------------------------------------------


@dataclass
class RegistryProcess:
    """One ``docker-registry serve`` on loopback; its storage and log live in ``directory``."""

    directory: Path
    port: int = field(default_factory=free_port)
    tls: TlsMaterial | None = None
    htpasswd: Path | None = None
    proxy_of: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def storage(self) -> Path:
        return self.directory / "storage"

    @property
    def log_path(self) -> Path:
        return self.directory / "registry.log"

    def blob_data_path(self, digest: str) -> Path:
        algorithm, hex_digest = digest.split(":", 1)
        return (
            self.storage / "docker/registry/v2/blobs" / algorithm / hex_digest[:2] / hex_digest
        ) / "data"

    def configuration(self) -> dict[str, Any]:
        http: dict[str, Any] = {"addr": self.host, "secret": "cache-pilot-test-secret"}
        if self.tls is not None:
            http["tls"] = {
                "certificate": str(self.tls.server_certificate),
                "key": str(self.tls.server_key),
            }
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {
                "cache": {"blobdescriptor": "inmemory"},
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
        }
        if self.htpasswd is not None:
            config["auth"] = {"htpasswd": {"realm": "cache-pilot-test", "path": str(self.htpasswd)}}
        if self.proxy_of is not None:
            config["proxy"] = {"remoteurl": self.proxy_of}
        return config

    def start(self, timeout: float = 15.0) -> RegistryProcess:
        binary = registry_binary()
        if binary is None:
            raise RuntimeError(f"{REGISTRY_BINARY} is not on PATH")
        self.directory.mkdir(parents=True, exist_ok=True)
        config_path = self.directory / "config.yml"
        config_path.write_text(json.dumps(self.configuration(), indent=2))  # JSON is YAML
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        context = ssl_context(self.tls)
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"registry on {self.host} exited: {self.log_tail()}")
            try:
                urllib.request.urlopen(f"{self.url}/v2/", timeout=1, context=context).close()
                return
            except urllib.error.HTTPError:
                return  # 401 from an authenticated registry: it is serving
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"registry on {self.host} not ready: {self.log_tail()}"
                    ) from None
                time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> RegistryProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def ssl_context(tls: TlsMaterial | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    return ssl.create_default_context(cafile=str(tls.ca_certificate))


# --- a registry client of the tests' own -------------------------------------------------


class RegistryError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass
class RegistryClient:
    """Pushes and pulls over the registry HTTP API (urllib only)."""

    base_url: str
    context: ssl.SSLContext | None = None
    authorization: str | None = None
    timeout: float = 60.0

    def _request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        all_headers = dict(headers or {})
        if self.authorization:
            all_headers["Authorization"] = self.authorization
        if not url.startswith(("http://", "https://")):
            url = urllib.parse.urljoin(self.base_url, url)
        request = urllib.request.Request(url, data=body, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as r:
                return r.status, dict(r.headers.items()), r.read()
        except urllib.error.HTTPError as error:
            raise RegistryError(error.code, error.read().decode(errors="replace")) from None

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        try:
            self._request("HEAD", f"/v2/{repository}/blobs/{digest}")
            return digest
        except RegistryError as error:
            if error.status != 404:
                raise
        _, headers, _ = self._request("POST", f"/v2/{repository}/blobs/uploads/")
        location = urllib.parse.urljoin(self.base_url, headers["Location"])
        separator = "&" if "?" in location else "?"
        self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return digest

    def push_manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> str:
        self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            body=body,
            headers={"Content-Type": media_type},
        )
        return sha256_digest(body)

    def get_manifest(self, repository: str, reference: str) -> tuple[str, bytes]:
        _, headers, body = self._request(
            "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        media_type = headers.get("Content-Type", "").split(";")[0].strip()
        return media_type, body

    def blob_digest(self, repository: str, digest: str) -> tuple[str, int]:
        """Streams a blob and returns its computed digest and size."""
        url = urllib.parse.urljoin(self.base_url, f"/v2/{repository}/blobs/{digest}")
        headers = {"Authorization": self.authorization} if self.authorization else {}
        request = urllib.request.Request(url, headers=headers)
        hasher = hashlib.sha256()
        size = 0
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as r:
                while chunk := r.read(1 << 20):
                    hasher.update(chunk)
                    size += len(chunk)
        except urllib.error.HTTPError as error:
            raise RegistryError(error.code, error.read().decode(errors="replace")) from None
        return "sha256:" + hasher.hexdigest(), size

    def pull_completely(self, repository: str, tag: str) -> PulledImage:
        """Fetches the tag, every platform manifest and every blob, checking every digest."""
        media_type, body = self.get_manifest(repository, tag)
        pulled = PulledImage(digest=sha256_digest(body), media_type=media_type)
        manifests: list[tuple[str, bytes]] = []
        if media_type in INDEX_TYPES:
            for entry in json.loads(body)["manifests"]:
                child_type, child = self.get_manifest(repository, entry["digest"])
                if sha256_digest(child) != entry["digest"]:
                    raise AssertionError(f"manifest {entry['digest']} came back altered")
                pulled.manifests.append(entry["digest"])
                manifests.append((child_type, child))
        else:
            pulled.manifests.append(pulled.digest)
            manifests.append((media_type, body))
        for _, manifest in manifests:
            document = json.loads(manifest)
            for descriptor in [document["config"], *document["layers"]]:
                digest, size = self.blob_digest(repository, descriptor["digest"])
                if (digest, size) != (descriptor["digest"], descriptor["size"]):
                    raise AssertionError(f"blob {descriptor['digest']} came back altered")
                pulled.blobs.append(digest)
                pulled.bytes += size
        return pulled


@dataclass
class PulledImage:
    digest: str
    media_type: str
    manifests: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    bytes: int = 0


# --- generated images ----------------------------------------------------------------------


@dataclass
class SeededImage:
    """What the seeder pushed: enough for the tests to know every digest to expect."""

    repository: str
    tag: str
    digest: str
    media_type: str
    platform_digests: dict[str, str] = field(default_factory=dict)
    platform_layers: dict[str, list[str]] = field(default_factory=dict)
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size, config and layers

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def total_bytes(self) -> int:
        return sum(self.blobs.values())


def tar_layer(name: str, content: bytes) -> bytes:
    """An uncompressed tar holding one file (deterministic: fixed mtime, owner, mode)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        member = tarfile.TarInfo(name)
        member.size = len(content)
        member.mtime = 0
        member.mode = 0o644
        archive.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


class Pusher(Protocol):
    def push_blob(self, repository: str, data: bytes) -> str: ...

    def push_manifest(
        self, repository: str, reference: str, media_type: str, body: bytes
    ) -> str: ...


@dataclass
class ImageSeeder:
    """Generates multi-platform images with random layer content and pushes them upstream.

    ``docker`` images use the Docker v2 media types (manifest list), the others OCI ones.
    Test layers are gzipped tars; ``compress=False`` keeps big random layers uncompressed
    (random data does not compress, and gzip would only cost time).
    """

    client: Pusher
    compress: bool = True

    def push_image(
        self,
        repository: str,
        tag: str,
        platforms: Iterable[str],
        layer_sizes: Iterable[int] = (4096, 65536),
        *,
        docker: bool = False,
        single: bool = False,
        seed: int = 0,
    ) -> SeededImage:
        platform_list = [Platform.parse(p) for p in platforms]
        if single and len(platform_list) != 1:
            raise ValueError("a single-manifest image has exactly one platform")
        sizes = list(layer_sizes)
        generator = random.Random(f"{repository}:{tag}:{seed}")
        manifest_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
        entries: list[dict[str, Any]] = []
        seeded = SeededImage(repository=repository, tag=tag, digest="", media_type="")
        for platform in platform_list:
            layers: list[dict[str, Any]] = []
            diff_ids: list[str] = []
            for number, size in enumerate(sizes):
                tar = tar_layer(f"layer-{number}.bin", generator.randbytes(size))
                diff_ids.append(sha256_digest(tar))
                blob = gzip.compress(tar, compresslevel=1, mtime=0) if self.compress else tar
                digest = self.client.push_blob(repository, blob)
                seeded.blobs[digest] = len(blob)
                if docker:
                    layer_type = DOCKER_LAYER_GZIP
                else:
                    layer_type = OCI_LAYER_GZIP if self.compress else OCI_LAYER_TAR
                layers.append({"mediaType": layer_type, "digest": digest, "size": len(blob)})
            config = json.dumps(
                {
                    **platform.fields(),
                    "created": "2026-11-01T00:00:00Z",
                    "config": {"Cmd": ["/bin/true"]},
                    "rootfs": {"type": "layers", "diff_ids": diff_ids},
                },
                sort_keys=True,
            ).encode()
            config_digest = self.client.push_blob(repository, config)
            seeded.blobs[config_digest] = len(config)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": manifest_type,
                    "config": {
                        "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                        "digest": config_digest,
                        "size": len(config),
                    },
                    "layers": layers,
                },
                indent=3,
            ).encode()
            reference = tag if single else sha256_digest(manifest)
            digest = self.client.push_manifest(repository, reference, manifest_type, manifest)
            seeded.platform_digests[str(platform)] = digest
            seeded.platform_layers[str(platform)] = [layer["digest"] for layer in layers]
            entries.append(
                {
                    "mediaType": manifest_type,
                    "digest": digest,
                    "size": len(manifest),
                    "platform": platform.fields(),
                }
            )
            if single:
                seeded.digest, seeded.media_type = digest, manifest_type
        if not single:
            index_type = DOCKER_LIST if docker else OCI_INDEX
            index_body = json.dumps(
                {"schemaVersion": 2, "mediaType": index_type, "manifests": entries}, indent=3
            ).encode()
            seeded.digest = self.client.push_manifest(repository, tag, index_type, index_body)
            seeded.media_type = index_type
        return seeded


def corrupt_blob_in_storage(registry: RegistryProcess, digest: str) -> None:
    """Flips bytes of a stored blob in place, keeping its size (the registry never re-hashes)."""
    path = registry.blob_data_path(digest)
    data = bytearray(path.read_bytes())
    for position in range(0, len(data), max(1, len(data) // 8)):
        data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def stored_blobs(registry: RegistryProcess) -> set[str]:
    root = registry.storage / "docker/registry/v2/blobs"
    found: set[str] = set()
    if not root.exists():
        return found
    for data in root.glob("*/*/*/data"):
        found.add(f"{data.parent.parent.parent.name}:{data.parent.name}")
    return found


def wait_until_stored(registry: RegistryProcess, digests: Iterable[str], timeout: float) -> None:
    """Waits for the proxy's background copies to land in its storage.

    The distribution proxy serves a first pull by streaming from the upstream while a second,
    background fetch commits the blob to its own storage; that copy can finish a moment after
    the client has its last byte.
    """
    wanted = set(digests)
    deadline = time.monotonic() + timeout
    while (missing := wanted - stored_blobs(registry)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if missing:
        raise AssertionError(f"the proxy never stored {sorted(missing)}")


def iter_blob_digests(images: Iterable[SeededImage]) -> Iterator[str]:
    for image in images:
        yield from image.blobs


# --- running the warm-up program -----------------------------------------------------------

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SHARED_LAYER = REPOSITORY_ROOT / "layers" / "shared"


@dataclass
class WarmRun:
    exit_code: int
    stdout: str
    stderr: str
    report_path: Path
    seconds: float
    peak_rss_kb: int
    cpu_seconds: float

    @property
    def report(self) -> WarmReport:
        return load_report(self.report_path)

    def image(self, reference: str) -> ImageResult:
        return next(image for image in self.report.images if image.reference == reference)


def write_batch(path: Path, images: Iterable[tuple[str, list[str]]]) -> Path:
    entries = [{"reference": reference, "platforms": platforms} for reference, platforms in images]
    path.write_text(json.dumps({"images": entries}))
    return path


def run_warm_process(
    registry: str,
    batch: Path,
    report: Path,
    *,
    username: str | None = None,
    password: str | None = None,
    ca_file: Path | None = None,
    insecure_http: bool = False,
    parallel: int | None = None,
    python: str | None = None,
    python_flags: Iterable[str] = (),
    environment: dict[str, str] | None = None,
    extra_arguments: Iterable[str] = (),
    timeout: float = 300.0,
) -> WarmRun:
    """Runs ``python -m cache_pilot.warm`` as a child process from the shipped layer's
    sources, and measures its wall time and peak RSS."""
    command = [python or sys.executable, *python_flags, "-m", "cache_pilot.warm"]
    command += ["--registry", registry, "--batch", str(batch), "--report", str(report)]
    if username is not None:
        command += ["--username", username, "--password-stdin"]
    if ca_file is not None:
        command += ["--ca-file", str(ca_file)]
    if insecure_http:
        command.append("--insecure-http")
    if parallel is not None:
        command += ["--parallel", str(parallel)]
    command += extra_arguments
    env = {**os.environ, "PYTHONPATH": str(SHARED_LAYER), **(environment or {})}
    measured = run_measured(
        command, stdin=f"{password or ''}\n", environment=env, cwd=batch.parent, timeout=timeout
    )
    return WarmRun(
        exit_code=measured.exit_code,
        stdout=measured.stdout,
        stderr=measured.stderr,
        report_path=report,
        seconds=measured.seconds,
        peak_rss_kb=measured.peak_rss_kb,
        cpu_seconds=measured.cpu_seconds,
    )


@dataclass(frozen=True)
class MeasuredRun:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_kb: int
    cpu_seconds: float  # user and system time, the child's own


def run_measured(
    command: list[str],
    *,
    stdin: str = "",
    environment: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300.0,
) -> MeasuredRun:
    """Runs a command to its end, measuring its wall time, CPU time and peak RSS."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=out, stderr=err, env=environment, cwd=cwd
        )
        assert child.stdin is not None
        child.stdin.write(stdin.encode())
        child.stdin.close()
        deadline = started + timeout
        peak_rss_kb = 0
        while True:
            peak_rss_kb = max(peak_rss_kb, _peak_rss_kb(child.pid))
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                child.wait()
                raise TimeoutError(f"{command[0]} still running after {timeout} s")
            time.sleep(0.005)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return MeasuredRun(
            exit_code=child.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            seconds=seconds,
            peak_rss_kb=peak_rss_kb,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
        )


def _peak_rss_kb(pid: int) -> int:
    """The process's own high-water RSS (VmHWM), read while it runs.

    Not the child's rusage: ru_maxrss survives exec, so a child forked from a big parent
    (a test process holding the seeded layers) would report the parent's size.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
