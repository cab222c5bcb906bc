"""Benchmark: the warm-up program against `skopeo copy --all`, through a cold cache.

Both pull the same images through a freshly started pull-through proxy (Debian's
docker-registry with TLS and basic auth, an empty storage for every run) in front of an
upstream registry seeded once with random, incompressible layers. skopeo copies one image at a
time to a local directory, as a hand-written buildspec loop would. Prints wall seconds, the
ratio, each side's CPU time and peak RSS, and the CPU that the two registries (which share
this machine's cores with the tool measured) burnt meanwhile.

    .venv/bin/python bench/warm_vs_skopeo.py                 # 20 images, about 1 GB
    .venv/bin/python bench/warm_vs_skopeo.py --total-mb 100  # a quick run

Needs docker-registry, skopeo and openssl on PATH, and python bcrypt (or apache2-utils).
The seeded upstream is kept under --workdir and reused while the sizes stay the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "shared"))

from tests.warm.registry_harness import (
    ImageSeeder,
    RegistryClient,
    RegistryProcess,
    SeededImage,
    TlsMaterial,
    bcrypt_htpasswd_line,
    make_tls_material,
    registry_binary,
    run_measured,
    run_warm_process,
    write_batch,
)

USERNAME = "bench"
PASSWORD = "bench-password"
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x")
MB = 1_000_000


@dataclass
class Result:
    tool: str
    seconds: float
    cpu_seconds: float
    peak_rss_kb: int
    bytes: int
    registries_cpu_seconds: float = 0.0  # what the upstream and the proxy burnt meanwhile


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--platforms", type=int, default=2, choices=range(1, len(PLATFORMS) + 1))
    parser.add_argument("--layers", type=int, default=5, help="layers per platform")
    parser.add_argument("--total-mb", type=float, default=1000, help="all blobs, in MB")
    parser.add_argument("--parallel", type=int, default=8, help="the warm-up's --parallel")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tool, alternating")
    parser.add_argument(
        "--workdir", type=Path, default=Path(".bench/warm_vs_skopeo"), help="scratch space"
    )
    return parser.parse_args()


def layer_sizes(total_bytes: int, images: int, platforms: int, layers: int) -> list[int]:
    """Halving sizes (a big base layer, smaller ones on top) adding up to each platform's
    share of the total."""
    share = total_bytes // (images * platforms)
    weights = [2.0**-n for n in range(layers)]
    return [max(1, int(share * weight / sum(weights))) for weight in weights]


def seed_upstream(
    upstream: RegistryProcess, arguments: argparse.Namespace, marker: Path
) -> list[SeededImage]:
    sizes = layer_sizes(
        int(arguments.total_mb * MB), arguments.images, arguments.platforms, arguments.layers
    )
    wanted = {"images": arguments.images, "platforms": arguments.platforms, "sizes": sizes}
    if marker.exists():
        recorded = json.loads(marker.read_text())
        if recorded["parameters"] == wanted:
            return [SeededImage(**image) for image in recorded["images"]]
    print(f"seeding the upstream: {arguments.images} images of {sizes} bytes per platform")
    seeder = ImageSeeder(RegistryClient(upstream.url, timeout=300), compress=False)
    platforms = PLATFORMS[: arguments.platforms]
    images = [
        seeder.push_image(f"bench/image{n:02d}", "1.0", platforms, layer_sizes=sizes, seed=n)
        for n in range(arguments.images)
    ]
    marker.write_text(
        json.dumps({"parameters": wanted, "images": [image.__dict__ for image in images]})
    )
    return images


def read_into_page_cache(directory: Path) -> None:
    """Reads the upstream's storage once, so that the first run measured does not also pay
    for the disk reads of the stand-in for the internet."""
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as source:
                while source.read(1 << 20):
                    pass


def settle_disk(workdir: Path) -> None:
    """Drops the last run's proxy storage and flushes every write, so that no run pays for
    the writeback (or the discards) of the one before."""
    shutil.rmtree(workdir / "proxy", ignore_errors=True)
    os.sync()
    time.sleep(1)


def start_cold_proxy(
    workdir: Path, upstream: RegistryProcess, tls: TlsMaterial, htpasswd: Path
) -> RegistryProcess:
    directory = workdir / "proxy"
    shutil.rmtree(directory, ignore_errors=True)
    return RegistryProcess(directory, tls=tls, htpasswd=htpasswd, proxy_of=upstream.url).start()


def run_cache_pilot(
    proxy: RegistryProcess,
    images: list[SeededImage],
    tls: TlsMaterial,
    workdir: Path,
    parallel: int,
) -> Result:
    batch = write_batch(workdir / "batch.json", [(image.reference, ["all"]) for image in images])
    run = run_warm_process(
        proxy.host,
        batch,
        workdir / "report.json",
        username=USERNAME,
        password=PASSWORD,
        ca_file=tls.ca_certificate,
        parallel=parallel,
        timeout=3600,
    )
    if run.exit_code != 0:
        raise SystemExit(f"the warm-up failed ({run.exit_code}):\n{run.stdout}\n{run.stderr}")
    warmed = run.report.total_bytes
    return Result("cache-pilot warm", run.seconds, run.cpu_seconds, run.peak_rss_kb, warmed)


def run_skopeo(
    proxy: RegistryProcess, images: list[SeededImage], tls: TlsMaterial, workdir: Path
) -> Result:
    skopeo = shutil.which("skopeo")
    assert skopeo is not None
    policy = workdir / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    output = workdir / "skopeo-out"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    seconds, cpu_seconds, peak, copied = 0.0, 0.0, 0, 0
    for number, image in enumerate(images):
        destination = output / f"{number:02d}"
        run = run_measured(
            [skopeo, "--policy", str(policy), "copy", "--all", "--quiet",
             "--src-creds", f"{USERNAME}:{PASSWORD}", "--src-cert-dir", str(tls.ca_directory),
             f"docker://{proxy.host}/{image.reference}", f"dir:{destination}"],
            environment={**os.environ, "HOME": str(workdir)},
            timeout=3600,
        )  # fmt: skip
        if run.exit_code != 0:
            raise SystemExit(f"skopeo failed on {image.reference}:\n{run.stderr}")
        seconds += run.seconds
        cpu_seconds += run.cpu_seconds
        peak = max(peak, run.peak_rss_kb)
        copied += sum(
            path.stat().st_size for path in destination.iterdir() if path.name in _hexes(image)
        )
    shutil.rmtree(output, ignore_errors=True)
    return Result("skopeo copy --all", seconds, cpu_seconds, peak, copied)


def registries_cpu_seconds(*registries: RegistryProcess) -> float:
    """User and system CPU time of the registry processes so far, from /proc."""
    total = 0.0
    for registry in registries:
        assert registry.process is not None
        with open(f"/proc/{registry.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _hexes(image: SeededImage) -> set[str]:
    return {digest.partition(":")[2] for digest in image.blobs}


def check_tools() -> None:
    missing = [
        name for name in ("docker-registry", "skopeo", "openssl") if shutil.which(name) is None
    ]
    if registry_binary() is None or missing:
        raise SystemExit(
            f"missing on PATH: {', '.join(missing)} (apt-get install {' '.join(missing)})"
        )


def main() -> int:
    arguments = parse_arguments()
    check_tools()
    workdir: Path = arguments.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    tls = make_tls_material(workdir / "tls")
    htpasswd_line = bcrypt_htpasswd_line(USERNAME, PASSWORD)
    if htpasswd_line is None:
        raise SystemExit("the proxy's htpasswd needs python bcrypt or apache2-utils' htpasswd")
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(htpasswd_line + "\n")

    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"note: load average {load:.1f} before the start; other work skews the figures")
    results: dict[str, list[Result]] = {}
    sizes = f"{arguments.images}x{arguments.platforms}x{arguments.layers}-{arguments.total_mb:g}MB"
    with RegistryProcess(workdir / f"upstream-{sizes}").start() as upstream:
        images = seed_upstream(upstream, arguments, upstream.directory / "seeded.json")
        read_into_page_cache(upstream.storage)
        settle_disk(workdir)
        expected = sum(image.total_bytes for image in images)
        print(
            f"{len(images)} images x {arguments.platforms} platforms x {arguments.layers} layers: "
            f"{expected / MB:.0f} MB of random blobs; a cold proxy for every run"
        )
        for round_number in range(arguments.rounds):
            order = ["cache-pilot", "skopeo"]
            if round_number % 2:
                order.reverse()
            for tool in order:
                with start_cold_proxy(workdir, upstream, tls, htpasswd) as proxy:
                    registries_before = registries_cpu_seconds(upstream, proxy)
                    if tool == "cache-pilot":
                        result = run_cache_pilot(proxy, images, tls, workdir, arguments.parallel)
                    else:
                        result = run_skopeo(proxy, images, tls, workdir)
                    result.registries_cpu_seconds = (
                        registries_cpu_seconds(upstream, proxy) - registries_before
                    )
                settle_disk(workdir)
                if result.bytes != expected:
                    raise SystemExit(f"{result.tool} moved {result.bytes} bytes, not {expected}")
                results.setdefault(result.tool, []).append(result)
                print(
                    f"round {round_number + 1}  {result.tool:<18} {result.seconds:7.2f} s  "
                    f"{expected / MB / result.seconds:7.1f} MB/s  "
                    f"CPU {result.cpu_seconds:6.2f} s  "
                    f"peak RSS {result.peak_rss_kb * 1024 / MB:6.1f} MB  "
                    f"(registries' CPU meanwhile {result.registries_cpu_seconds:6.2f} s)"
                )

    ours = statistics.median(r.seconds for r in results["cache-pilot warm"])
    theirs = statistics.median(r.seconds for r in results["skopeo copy --all"])
    peak_mb = max(r.peak_rss_kb for r in results["cache-pilot warm"]) * 1024 / MB
    skopeo_peak_mb = max(r.peak_rss_kb for r in results["skopeo copy --all"]) * 1024 / MB
    ratio = theirs / ours
    print(
        f"cache-pilot warm (--parallel {arguments.parallel}): {ours:.2f} s, "
        f"peak RSS {peak_mb:.1f} MB"
    )
    print(
        f"skopeo copy --all, one image at a time: {theirs:.2f} s, "
        f"largest process peak RSS {skopeo_peak_mb:.1f} MB"
    )
    print(f"ratio (skopeo / cache-pilot): {ratio:.2f}x, target >= 2x: {_verdict(ratio >= 2)}")
    print(f"cache-pilot peak RSS {peak_mb:.1f} MB, target < 100 MB: {_verdict(peak_mb < 100)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
