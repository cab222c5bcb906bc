"""The warm-up program runs on the build image's own python3, where nothing but the standard
library can be counted on: importing the whole package must load nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.warm.registry_harness import SHARED_LAYER

# -I: isolated (no PYTHONPATH, no user site), -S: no site-packages at all. The probe imports
# every module of the package (but __main__, which would run the program) and lists what got
# loaded that is neither the standard library nor the package itself.
PROBE = """
import importlib, json, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import cache_pilot.warm as package
for module in pkgutil.iter_modules(package.__path__, "cache_pilot.warm."):
    if not module.name.endswith(".__main__"):
        importlib.import_module(module.name)
foreign = sorted(
    name for name in sys.modules
    if name.partition(".")[0] not in sys.stdlib_module_names
    and name.partition(".")[0] not in ("cache_pilot", "__main__", "builtins", "sys")
)
print(json.dumps({"foreign": foreign, "loaded": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("interpreter", ["current", "python3.11"])
def test_the_package_imports_with_nothing_but_the_standard_library(interpreter: str) -> None:
    python = sys.executable if interpreter == "current" else shutil.which(interpreter)
    if python is None:
        pytest.skip(f"{interpreter} is not installed here")

    done = subprocess.run(
        [python, "-I", "-S", "-c", PROBE, str(SHARED_LAYER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["foreign"] == []
    for module in ("cli", "transport", "warmer", "report", "batch", "manifests", "credentials"):
        assert f"cache_pilot.warm.{module}" in result["loaded"]
