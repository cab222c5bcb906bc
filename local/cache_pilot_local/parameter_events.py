"""Parameter Store change events for moto's SSM, as AWS sends them to EventBridge.

On AWS, every create, update, delete and label of a parameter puts a `Parameter Store Change`
event (source aws.ssm) on the default bus; the value is not in the event. moto's SSM sends
nothing, so this wraps its backend's writes to put the same events on moto's default bus,
where the stack's rules route them.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any, cast

from moto.events.models import events_backends
from moto.ssm.models import SimpleSystemManagerBackend

_install_lock = threading.Lock()
_installed = False


def parameter_change_event(
    backend: SimpleSystemManagerBackend, name: str, operation: str, parameter_type: str
) -> dict[str, Any]:
    """One PutEvents entry as AWS sends it for a change of parameter `name`."""
    path = name if name.startswith("/") else f"/{name}"
    return {
        "Source": "aws.ssm",
        "DetailType": "Parameter Store Change",
        "Resources": [f"arn:aws:ssm:{backend.region_name}:{backend.account_id}:parameter{path}"],
        "Detail": json.dumps(
            {"operation": operation, "name": name, "type": parameter_type, "description": ""}
        ),
    }


def _announce(backend: SimpleSystemManagerBackend, name: str, operation: str, kind: str) -> None:
    entry = parameter_change_event(backend, name, operation, kind)
    events_backends[backend.account_id][backend.region_name].put_events([entry])


def _current_type(backend: SimpleSystemManagerBackend, name: str) -> str | None:
    versions = backend._parameters.get(name)
    return versions[-1].parameter_type if versions else None


def _announcing_put[F: Callable[..., Any]](put_parameter: F) -> F:
    @functools.wraps(put_parameter)
    def put(self: SimpleSystemManagerBackend, name: str, *args: Any, **kwargs: Any) -> Any:
        existed = _current_type(self, name) is not None
        parameter = put_parameter(self, name, *args, **kwargs)
        _announce(self, name, "Update" if existed else "Create", parameter.parameter_type)
        return parameter

    return cast(F, put)


def _announcing_delete[F: Callable[..., Any]](delete_parameter: F) -> F:
    @functools.wraps(delete_parameter)
    def delete(self: SimpleSystemManagerBackend, name: str) -> Any:
        kind = _current_type(self, name)
        result = delete_parameter(self, name)
        if kind is not None:
            _announce(self, name, "Delete", kind)
        return result

    return cast(F, delete)


def _announcing_delete_many[F: Callable[..., Any]](delete_parameters: F) -> F:
    @functools.wraps(delete_parameters)
    def delete_many(self: SimpleSystemManagerBackend, names: list[str]) -> Any:
        kinds = {name: _current_type(self, name) for name in names}
        result = delete_parameters(self, names)
        for name, kind in kinds.items():
            if kind is not None and _current_type(self, name) is None:
                _announce(self, name, "Delete", kind)
        return result

    return cast(F, delete_many)


def _announcing_label[F: Callable[..., Any]](label_parameter_version: F) -> F:
    @functools.wraps(label_parameter_version)
    def label(self: SimpleSystemManagerBackend, name: str, *args: Any, **kwargs: Any) -> Any:
        result = label_parameter_version(self, name, *args, **kwargs)
        _announce(self, name, "LabelParameterVersion", _current_type(self, name) or "String")
        return result

    return cast(F, label)


def install() -> None:
    """Make moto's SSM announce parameter changes on the default event bus. Idempotent."""
    global _installed
    with _install_lock:
        if _installed:
            return
        backend = SimpleSystemManagerBackend
        backend.put_parameter = _announcing_put(backend.put_parameter)  # type: ignore[method-assign]
        backend.delete_parameter = _announcing_delete(backend.delete_parameter)  # type: ignore[method-assign]
        backend.delete_parameters = _announcing_delete_many(backend.delete_parameters)  # type: ignore[method-assign]
        backend.label_parameter_version = _announcing_label(  # type: ignore[method-assign]
            backend.label_parameter_version
        )
        _installed = True
