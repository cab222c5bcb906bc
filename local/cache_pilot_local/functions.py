"""Run the stack's Lambda functions in-process, as Lambda would: code, handler and environment
come from template.yaml; the module is imported once (a cold start) with that environment.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cache_pilot_local.template import StackTemplate, function_code, function_environment

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that Powertools and the handlers read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


@contextmanager
def patched_environment(variables: Mapping[str, str], remove: Iterable[str] = ()) -> Iterator[None]:
    """Set `variables` and unset `remove` for the block; restore the environment after."""
    removed = list(remove)
    saved = {name: os.environ.get(name) for name in [*variables, *removed]}
    for name in removed:
        os.environ.pop(name, None)
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class LocalFunction:
    """One Lambda function of the stack, run in this process with its own environment."""

    def __init__(
        self,
        *,
        logical_id: str,
        name: str,
        arn: str,
        environment: Mapping[str, str],
        folder: Path,
        handler: str,
    ) -> None:
        self.logical_id = logical_id
        self.name = name
        self.environment = {"AWS_LAMBDA_FUNCTION_NAME": name, **environment}
        self._arn = arn
        self._folder = folder
        self._handler = handler
        self._module: ModuleType | None = None
        self._loading = threading.Lock()

    @classmethod
    def from_template(
        cls,
        stack: StackTemplate,
        logical_id: str,
        names: Mapping[str, str],
        extra_environment: Mapping[str, str] | None = None,
    ) -> LocalFunction:
        """The function as template.yaml defines it, its references resolved against `names`."""
        name = names.get(logical_id, logical_id)
        folder, handler = function_code(stack, logical_id)
        return cls(
            logical_id=logical_id,
            name=name,
            arn=f"arn:aws:lambda:{stack.region}:{stack.account_id}:function:{name}",
            environment={
                **function_environment(stack, logical_id, names),
                **(extra_environment or {}),
            },
            folder=folder,
            handler=handler,
        )

    @classmethod
    def from_deployment(
        cls,
        stack: StackTemplate,
        logical_id: str,
        configuration: Mapping[str, Any],
        extra_environment: Mapping[str, str] | None = None,
    ) -> LocalFunction:
        """The function as deployed: `configuration` is Lambda's GetFunctionConfiguration."""
        folder, _ = function_code(stack, logical_id)
        return cls(
            logical_id=logical_id,
            name=configuration["FunctionName"],
            arn=configuration["FunctionArn"],
            environment={
                **configuration.get("Environment", {}).get("Variables", {}),
                **(extra_environment or {}),
            },
            folder=folder,
            handler=configuration["Handler"],
        )

    def _load(self) -> Handler:
        module_name, _, function_name = self._handler.rpartition(".")
        with self._loading:
            if self._module is None:
                self._module = self._import(module_name)
        handler: Handler = getattr(self._module, function_name)
        return handler

    def _import(self, module_name: str) -> ModuleType:
        path = self._folder / f"{module_name}.py"
        # A unique module name: every function's module is called 'app'.
        unique = f"cache_pilot_function_{self.logical_id}_{uuid.uuid4().hex[:8]}"
        spec = importlib.util.spec_from_file_location(unique, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        spec.loader.exec_module(module)
        return module

    def invoke(self, event: dict[str, Any]) -> Any:
        with patched_environment(self.environment):
            handler = self._load()
            return handler(event, LocalLambdaContext(self.name, self._arn))
