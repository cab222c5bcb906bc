"""Fixtures for the warm-up program: real registries on loopback (an upstream and a TLS,
basic-auth pull-through proxy of it) and the in-memory fake registry."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from tests.warm.fake_registry import FakeRegistry
from tests.warm.registry_harness import (
    ImageSeeder,
    RegistryClient,
    RegistryProcess,
    TlsMaterial,
    WarmRun,
    basic_authorization,
    bcrypt_htpasswd_line,
    make_tls_material,
    registry_binary,
    run_warm_process,
    ssl_context,
    write_batch,
)

USERNAME = "warm"
PASSWORD = "correct horse battery staple"


def skip_or_fail_in_ci(reason: str) -> NoReturn:
    """Skip on a developer's machine; in CI (which installs everything) a missing tool fails."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def registry_binary_path() -> str:
    binary = registry_binary()
    if binary is None:
        skip_or_fail_in_ci(
            "Debian's docker-registry is not installed (apt-get install docker-registry)"
        )
    return binary


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def htpasswd_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    line = bcrypt_htpasswd_line(USERNAME, PASSWORD)
    if line is None:
        skip_or_fail_in_ci(
            "the proxy's htpasswd needs bcrypt: python bcrypt or apache2-utils' htpasswd"
        )
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    path.write_text(line + "\n")
    return path


@dataclass
class LoopbackRegistries:
    """An upstream registry (plain HTTP, open) and the cache: a pull-through proxy of it with
    TLS from a test CA and basic authentication, as ECR has."""

    upstream: RegistryProcess
    proxy: RegistryProcess
    tls: TlsMaterial
    workdir: Path

    @property
    def seeder(self) -> ImageSeeder:
        return ImageSeeder(RegistryClient(self.upstream.url))

    def proxy_client(self, password: str = PASSWORD) -> RegistryClient:
        return RegistryClient(
            self.proxy.url,
            context=ssl_context(self.tls),
            authorization=basic_authorization(USERNAME, password),
        )

    def warm(
        self,
        images: Iterable[tuple[str, list[str]]],
        *,
        password: str = PASSWORD,
        trust_test_ca: bool = True,
    ) -> WarmRun:
        """Runs the warm-up program through the proxy, as the CodeBuild job does."""
        batch = write_batch(self.workdir / "batch.json", images)
        return run_warm_process(
            self.proxy.host,
            batch,
            self.workdir / "report.json",
            username=USERNAME,
            password=password,
            ca_file=self.tls.ca_certificate if trust_test_ca else None,
        )


@pytest.fixture
def registries(
    registry_binary_path: str, tls_material: TlsMaterial, htpasswd_file: Path, tmp_path: Path
) -> Iterator[LoopbackRegistries]:
    # The proxy checks its upstream when it starts and exits if it is not up: upstream first.
    with RegistryProcess(tmp_path / "upstream").start() as upstream:
        proxy = RegistryProcess(
            tmp_path / "proxy", tls=tls_material, htpasswd=htpasswd_file, proxy_of=upstream.url
        )
        with proxy.start():
            yield LoopbackRegistries(upstream, proxy, tls_material, tmp_path)


@pytest.fixture
def fake_registry_factory() -> Iterator[Callable[[str | None], FakeRegistry]]:
    """Starts fake registries with ``auth`` None, "basic" or "bearer"; stops them after."""
    started: list[FakeRegistry] = []

    def start(auth: str | None) -> FakeRegistry:
        registry = FakeRegistry(auth=auth, username=USERNAME, password=PASSWORD).start()
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.stop()


@pytest.fixture
def fake_registry(fake_registry_factory: Callable[[str | None], FakeRegistry]) -> FakeRegistry:
    return fake_registry_factory(None)
