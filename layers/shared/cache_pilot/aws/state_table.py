"""The DynamoDB state table: image items under pk IMAGE, rule ownership under pk RULE.

Key schema (template.yaml's StateTable is the source of truth): `pk` (S, hash), `sk` (S, range).
Items of one kind share a partition so a single Query reads them all; the table stays small
(one item per listed image and per rule), far below a partition's limits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from cache_pilot.state import ImageRecord, ImageStatus, RuleRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

IMAGE_PARTITION = "IMAGE"
RULE_PARTITION = "RULE"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(partition: str, sort_key: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
    plain = {
        "pk": partition,
        "sk": sort_key,
        **{k: v for k, v in attributes.items() if v is not None},
    }
    return {name: _serializer.serialize(value) for name, value in plain.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def iso(moment: datetime) -> str:
    return moment.isoformat()


class StateTable:
    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._dynamodb = dynamodb
        self.table_name = table_name

    def _query_partition(self, partition: str) -> Iterator[dict[str, Any]]:
        pages = self._dynamodb.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": partition}},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                yield from_item(item)

    # --- images -------------------------------------------------------------------------------

    def images(self) -> dict[str, ImageRecord]:
        return {
            record.reference: record
            for record in (
                ImageRecord.model_validate(item) for item in self._query_partition(IMAGE_PARTITION)
            )
        }

    def list_image(self, record: ImageRecord) -> bool:
        """Add a listed image as PENDING; False when it is already listed (a concurrent sync)."""
        try:
            self._dynamodb.put_item(
                TableName=self.table_name,
                Item=to_item(IMAGE_PARTITION, record.reference, record.model_dump(mode="json")),
                ConditionExpression="attribute_not_exists(sk) OR #status = :retired",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":retired": {"S": ImageStatus.RETIRED}},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def update_image_settings(
        self,
        reference: str,
        rule_prefix: str,
        platforms: tuple[str, ...],
        max_age_seconds: int,
        now: datetime,
    ) -> bool:
        try:
            self._dynamodb.update_item(
                TableName=self.table_name,
                Key=to_item(IMAGE_PARTITION, reference, {}),
                UpdateExpression=(
                    "SET rule_prefix = :rule, platforms = :platforms, "
                    "max_age_seconds = :max_age, updated_at = :now"
                ),
                ConditionExpression="attribute_exists(sk) AND #status <> :retired",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":rule": {"S": rule_prefix},
                    ":platforms": _serializer.serialize(list(platforms)),
                    ":max_age": {"N": str(max_age_seconds)},
                    ":now": {"S": iso(now)},
                    ":retired": {"S": ImageStatus.RETIRED},
                },
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def retire_image(self, reference: str, now: datetime) -> bool:
        """Mark a delisted image RETIRED; False when it already was."""
        try:
            self._dynamodb.update_item(
                TableName=self.table_name,
                Key=to_item(IMAGE_PARTITION, reference, {}),
                UpdateExpression="SET #status = :retired, retired_at = :now, updated_at = :now",
                ConditionExpression="attribute_exists(sk) AND #status <> :retired",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":retired": {"S": ImageStatus.RETIRED},
                    ":now": {"S": iso(now)},
                },
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    # --- rule ownership -----------------------------------------------------------------------

    def owned_rules(self) -> dict[str, RuleRecord]:
        return {
            record.prefix: record
            for record in (
                RuleRecord.model_validate(item) for item in self._query_partition(RULE_PARTITION)
            )
        }

    def record_rule(self, record: RuleRecord) -> None:
        self._dynamodb.put_item(
            TableName=self.table_name,
            Item=to_item(RULE_PARTITION, record.prefix, record.model_dump(mode="json")),
        )

    def forget_rule(self, prefix: str) -> None:
        self._dynamodb.delete_item(
            TableName=self.table_name, Key=to_item(RULE_PARTITION, prefix, {})
        )
