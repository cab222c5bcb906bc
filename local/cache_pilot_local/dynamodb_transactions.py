"""moto's DynamoDB TransactWriteItems, made to back up each table once per transaction.

moto 5.2.5 deep-copies the whole table once per action of a transaction, for its rollback: a
transaction of a hundred updates on a table of a thousand items copies a hundred thousand
items, which turns a one-second local run into a minute. This keeps one backup per table and
transaction (all taken before any write, as moto's are); the rollback itself stays moto's.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_transaction = threading.local()
_install_lock = threading.Lock()


class _CopyEachTableOncePerTransaction:
    """Stands in for the `copy` module inside moto's DynamoDB models."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        backups: dict[int, Any] | None = getattr(_transaction, "backups", None)
        if backups is None or not isinstance(value, Table):
            return copy.deepcopy(value, memo)
        if id(value) not in backups:
            backups[id(value)] = copy.deepcopy(value, memo)
        return backups[id(value)]


def install() -> None:
    """Idempotent; applies to mock_aws and to moto's server in this process alike."""
    with _install_lock:
        if isinstance(dynamodb_models.copy, _CopyEachTableOncePerTransaction):  # type: ignore[attr-defined]
            return
        moto_transact_write_items = DynamoDBBackend.transact_write_items

        def transact_write_items(
            self: DynamoDBBackend, transact_items: list[dict[str, Any]]
        ) -> None:
            _transaction.backups = {}
            try:
                moto_transact_write_items(self, transact_items)
            finally:
                _transaction.backups = None

        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        dynamodb_models.copy = _CopyEachTableOncePerTransaction()  # type: ignore[assignment,attr-defined]
