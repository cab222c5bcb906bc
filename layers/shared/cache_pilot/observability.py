"""Logger, Tracer and Metrics, created once for every function.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE, which template.yaml's Globals set.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics

Handler = TypeVar("Handler", bound=Callable[..., Any])


class HandlerTracer(Protocol):
    def capture_lambda_handler(self, lambda_handler: Handler) -> Handler: ...


class _TracingDisabled:
    """Stands in for Tracer where tracing is off (tests, the embedded AWS).

    Powertools' Tracer imports the X-Ray SDK even when disabled, and the SDK's recorder builds
    two botocore clients at import: that alone costs a cold start about as much as boto3.
    """

    def capture_lambda_handler(self, lambda_handler: Handler) -> Handler:
        return lambda_handler


def _tracer() -> HandlerTracer:
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true"):
        return _TracingDisabled()
    from aws_lambda_powertools import Tracer

    return cast(HandlerTracer, Tracer())


logger = Logger()
tracer = _tracer()
metrics = Metrics()
