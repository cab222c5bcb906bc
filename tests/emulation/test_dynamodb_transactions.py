"""moto's TransactWriteItems with one table backup per transaction: still all or nothing."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cache_pilot_local.emulation import install_emulation


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    install_emulation()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(50):
            client.put_item(TableName="t", Item={"pk": {"S": f"k{n}"}, "v": {"N": "0"}})
        yield client


def increment(key: str, expected: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": key}},
            "UpdateExpression": "SET v = v + :one",
            "ConditionExpression": "v = :expected",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":expected": {"N": str(expected)}},
        }
    }


def values(client: Any) -> dict[str, int]:
    items = client.scan(TableName="t")["Items"]
    return {item["pk"]["S"]: int(item["v"]["N"]) for item in items}


def test_a_transaction_applies_every_update(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[increment(f"k{n}", 0) for n in range(50)])
    assert set(values(dynamodb).values()) == {1}


def test_a_cancelled_transaction_changes_nothing(dynamodb: Any) -> None:
    # Given a transaction whose last condition fails
    items = [increment(f"k{n}", 0) for n in range(49)] + [increment("k49", 7)]
    # When it is sent, Then it is cancelled and no item changed
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=items)
    assert set(values(dynamodb).values()) == {0}


def test_the_table_is_copied_once_per_transaction(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.table import Table

    copies = []
    real_deepcopy = copy.deepcopy

    def counting_deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            copies.append(value.name)
        return real_deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting_deepcopy)
    dynamodb.transact_write_items(TransactItems=[increment(f"k{n}", 0) for n in range(50)])
    assert copies == ["t"]
