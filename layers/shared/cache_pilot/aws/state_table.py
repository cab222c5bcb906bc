"""The DynamoDB state table: image items under pk IMAGE, rule ownership under pk RULE.

Key schema (template.yaml's StateTable is the source of truth): `pk` (S, hash), `sk` (S, range).
Items of one kind share a partition so a single Query reads them all; the table stays small
(one item per listed image and per rule), far below a partition's limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from cache_pilot.state import (
    BatchRecord,
    BatchStatus,
    ImageRecord,
    ImageStatus,
    NatWindow,
    RuleRecord,
    WindowState,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

IMAGE_PARTITION = "IMAGE"
RULE_PARTITION = "RULE"
BATCH_PARTITION = "BATCH"
NAT_PARTITION = "NAT"
NAT_WINDOW = "WINDOW"
UPDATE_CONCURRENCY = 8
TRANSACTION_LIMIT = 100  # actions per TransactWriteItems


class WindowClosing(Exception):
    """Another run is removing the NAT route right now; try again in a moment."""


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


def condition_held(write: Callable[[], object]) -> bool:
    """Run a conditional write; False when its condition did not hold (nothing was written)."""
    try:
        write()
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise
    return True


def is_transaction_cancelled(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "TransactionCanceledException"


@dataclass(frozen=True)
class ImageUpdate:
    """One conditional UpdateItem of an image item, built before it is sent.

    Expressions write `#status` for the item's status attribute (a DynamoDB reserved word).
    """

    reference: str
    expression: str
    condition: str
    values: dict[str, Any]

    def arguments(self, table_name: str) -> dict[str, Any]:
        return {
            "TableName": table_name,
            "Key": to_item(IMAGE_PARTITION, self.reference, {}),
            "UpdateExpression": self.expression,
            "ConditionExpression": self.condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": self.values,
        }


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
        return condition_held(
            lambda: self._dynamodb.put_item(
                TableName=self.table_name,
                Item=to_item(IMAGE_PARTITION, record.reference, record.model_dump(mode="json")),
                ConditionExpression="attribute_not_exists(sk) OR #status = :retired",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":retired": {"S": ImageStatus.RETIRED}},
            )
        )

    def update_image_settings(
        self,
        reference: str,
        rule_prefix: str,
        platforms: tuple[str, ...],
        max_age_seconds: int,
        now: datetime,
    ) -> bool:
        return condition_held(
            lambda: self._dynamodb.update_item(
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
        )

    def retire_image(self, reference: str, now: datetime) -> bool:
        """Mark a delisted image RETIRED; False when it already was."""
        return condition_held(
            lambda: self._dynamodb.update_item(
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
        )

    def mark_stale(self, references: Sequence[str], now: datetime) -> list[str]:
        """Ask for a re-warm of listed images: WARM, FAILED or STALE ones become STALE.

        PENDING and WARMING images are already on their way; RETIRED ones are not listed.
        """
        return self.apply_updates(
            [
                ImageUpdate(
                    reference=reference,
                    expression="SET #status = :stale, updated_at = :now",
                    condition="#status IN (:warm, :failed, :stale)",
                    values={
                        ":stale": {"S": ImageStatus.STALE.value},
                        ":warm": {"S": ImageStatus.WARM.value},
                        ":failed": {"S": ImageStatus.FAILED.value},
                        ":now": {"S": iso(now)},
                    },
                )
                for reference in references
            ]
        )

    def record_freshness(self, updates: Sequence[FreshnessUpdate]) -> list[str]:
        """Record what a freshness check found; only where the status is still the one read."""
        conditional = []
        for update in updates:
            values: dict[str, Any] = {
                ":expected": {"S": update.expected_status.value},
                ":status": {"S": update.status.value},
                ":now": {"S": iso(update.checked_at)},
            }
            assignments = ["#status = :status", "checked_at = :now"]
            removals = []
            for attribute, moment_or_text in (
                ("cached_digest", update.cached_digest),
                ("cached_at", iso(update.cached_at) if update.cached_at else None),
                ("last_pulled_at", iso(update.last_pulled_at) if update.last_pulled_at else None),
            ):
                if moment_or_text is None:
                    removals.append(attribute)
                else:
                    values[f":{attribute}"] = {"S": moment_or_text}
                    assignments.append(f"{attribute} = :{attribute}")
            if update.status is not update.expected_status:
                assignments.append("updated_at = :now")
            expression = "SET " + ", ".join(assignments)
            if removals:
                expression += " REMOVE " + ", ".join(removals)
            conditional.append(
                ImageUpdate(
                    reference=update.reference,
                    expression=expression,
                    condition="#status = :expected",
                    values=values,
                )
            )
        return self.apply_in_transactions(conditional)

    def remove_retired(self, references: Sequence[str], retired_before: datetime) -> list[str]:
        """Delete items retired before a moment; one listed again meanwhile is kept."""
        removed = []
        for reference in references:
            if condition_held(
                lambda reference=reference: self._dynamodb.delete_item(  # type: ignore[misc]
                    TableName=self.table_name,
                    Key=to_item(IMAGE_PARTITION, reference, {}),
                    ConditionExpression="#status = :retired AND retired_at < :before",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":retired": {"S": ImageStatus.RETIRED.value},
                        ":before": {"S": iso(retired_before)},
                    },
                )
            ):
                removed.append(reference)
        return removed

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

    # --- conditional updates of image items ---------------------------------------------------

    def apply_updates(self, updates: Sequence[ImageUpdate]) -> list[str]:
        """Apply conditional updates, several at a time; return the references whose condition
        held.

        One UpdateItem per item rather than TransactWriteItems: a transaction is cancelled
        whole when one condition fails, which is the normal case when two runs race for the
        same images, and each item's outcome is what matters here.
        """

        def applied(update: ImageUpdate) -> bool:
            return condition_held(
                lambda: self._dynamodb.update_item(**update.arguments(self.table_name))
            )

        with ThreadPoolExecutor(max_workers=UPDATE_CONCURRENCY) as pool:
            held = list(pool.map(applied, updates))
        return [update.reference for update, ok in zip(updates, held, strict=True) if ok]

    def apply_in_transactions(self, updates: Sequence[ImageUpdate]) -> list[str]:
        """Apply conditional updates a hundred per transaction; for updates that rarely fail.

        A transaction is cancelled whole when one condition fails; that hundred is then
        applied one by one, so each item still gets its own outcome.
        """
        applied: list[str] = []
        for start in range(0, len(updates), TRANSACTION_LIMIT):
            chunk = updates[start : start + TRANSACTION_LIMIT]
            try:
                self._dynamodb.transact_write_items(
                    TransactItems=[
                        {"Update": update.arguments(self.table_name)}  # type: ignore[typeddict-item]
                        for update in chunk
                    ]
                )
            except ClientError as exc:
                if not is_transaction_cancelled(exc):
                    raise
                applied.extend(self.apply_updates(chunk))
            else:
                applied.extend(update.reference for update in chunk)
        return applied

    def claim_images(
        self,
        references: Sequence[str],
        batch_id: str,
        claimable: Sequence[ImageStatus],
        now: datetime,
    ) -> list[str]:
        """Move images to WARMING for one batch; an image is in at most one build."""
        statuses = {
            f":claimable{index}": {"S": status.value} for index, status in enumerate(claimable)
        }
        update = (
            "SET #status = :warming, claimed_from = #status, build_id = :batch, updated_at = :now"
        )
        return self.apply_updates(
            [
                ImageUpdate(
                    reference=reference,
                    expression=update,
                    condition=f"#status IN ({', '.join(statuses)})",
                    values={
                        **statuses,
                        ":warming": {"S": ImageStatus.WARMING.value},
                        ":batch": {"S": batch_id},
                        ":now": {"S": iso(now)},
                    },
                )
                for reference in references
            ]
        )

    def release_claims(
        self, references: Sequence[str], batch_id: str, reason: str, now: datetime
    ) -> list[str]:
        """Give claimed images back the status they had, with the reason the warm-up did not run."""
        return self.apply_updates(
            [
                ImageUpdate(
                    reference=reference,
                    expression=(
                        "SET #status = claimed_from, last_error = :reason, updated_at = :now "
                        "REMOVE claimed_from"
                    ),
                    condition="#status = :warming AND build_id = :batch",
                    values={
                        ":warming": {"S": ImageStatus.WARMING.value},
                        ":batch": {"S": batch_id},
                        ":reason": {"S": reason},
                        ":now": {"S": iso(now)},
                    },
                )
                for reference in references
            ]
        )

    def settle_images(self, batch_id: str, outcomes: Sequence[ImageSettlement]) -> list[str]:
        """Record what ECR holds for each image of a batch; only images still in that batch.

        In transactions: only a sync that retired an image meanwhile makes a condition fail.
        """
        updates = []
        for outcome in outcomes:
            values: dict[str, Any] = {
                ":warming": {"S": ImageStatus.WARMING.value},
                ":batch": {"S": batch_id},
                ":status": {"S": outcome.status.value},
                ":now": {"S": iso(outcome.checked_at)},
            }
            assignments = ["#status = :status", "updated_at = :now", "checked_at = :now"]
            removals = ["claimed_from"]
            for attribute, value in (
                ("cached_digest", outcome.cached_digest),
                ("cached_at", iso(outcome.cached_at) if outcome.cached_at else None),
                ("last_pulled_at", iso(outcome.last_pulled_at) if outcome.last_pulled_at else None),
                (
                    "verified_at",
                    iso(outcome.checked_at) if outcome.status is ImageStatus.WARM else None,
                ),
                ("last_error", outcome.error),
            ):
                if value is None:
                    if attribute == "last_error":
                        removals.append(attribute)
                    continue
                values[f":{attribute}"] = {"S": value}
                assignments.append(f"{attribute} = :{attribute}")
            updates.append(
                ImageUpdate(
                    reference=outcome.reference,
                    expression=f"SET {', '.join(assignments)} REMOVE {', '.join(removals)}",
                    condition="#status = :warming AND build_id = :batch",
                    values=values,
                )
            )
        return self.apply_in_transactions(updates)

    # --- warm-up batches ----------------------------------------------------------------------

    def put_batch(self, batch: BatchRecord) -> None:
        self._dynamodb.put_item(
            TableName=self.table_name,
            Item=to_item(BATCH_PARTITION, batch.batch_id, batch.model_dump(mode="json")),
            ConditionExpression="attribute_not_exists(sk)",
        )

    def batch(self, batch_id: str) -> BatchRecord | None:
        item = self._dynamodb.get_item(
            TableName=self.table_name,
            Key=to_item(BATCH_PARTITION, batch_id, {}),
            ConsistentRead=True,
        ).get("Item")
        return BatchRecord.model_validate(from_item(item)) if item else None

    def batches(self) -> list[BatchRecord]:
        return [BatchRecord.model_validate(item) for item in self._query_partition(BATCH_PARTITION)]

    def mark_batch(
        self,
        batch_id: str,
        status: BatchStatus,
        now: datetime,
        *,
        from_statuses: Sequence[BatchStatus],
        build_id: str | None = None,
        build_status: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Move a batch on; False when it was not in one of `from_statuses` (already done)."""
        values: dict[str, Any] = {":status": {"S": status.value}}
        names = {"#status": "status"}
        assignments = ["#status = :status"]
        for attribute, value in (
            ("build_id", build_id),
            ("build_status", build_status),
            ("error", error),  # a DynamoDB reserved word: always through a name placeholder
            ("finished_at", iso(now) if status is BatchStatus.FINISHED else None),
        ):
            if value is not None:
                values[f":{attribute}"] = {"S": value}
                names[f"#{attribute}"] = attribute
                assignments.append(f"#{attribute} = :{attribute}")
        allowed = {f":from{index}": {"S": s.value} for index, s in enumerate(from_statuses)}
        return condition_held(
            lambda: self._dynamodb.update_item(
                TableName=self.table_name,
                Key=to_item(BATCH_PARTITION, batch_id, {}),
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression=f"attribute_exists(sk) AND #status IN ({', '.join(allowed)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, **allowed},
            )
        )

    # --- the NAT window -----------------------------------------------------------------------

    def window(self) -> NatWindow:
        item = self._dynamodb.get_item(
            TableName=self.table_name,
            Key=to_item(NAT_PARTITION, NAT_WINDOW, {}),
            ConsistentRead=True,
        ).get("Item")
        return _window_from(item)

    def _ensure_window(self) -> None:
        try:
            self._dynamodb.put_item(
                TableName=self.table_name,
                Item=to_item(
                    NAT_PARTITION, NAT_WINDOW, {"state": WindowState.CLOSED.value, "leases": {}}
                ),
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    def join_window(
        self, lease_id: str, expires_at: datetime, now: datetime, stale_closing: timedelta
    ) -> NatWindow:
        """Take a lease and mark the window open; WindowClosing while a closer is at work."""
        for attempt in range(2):
            try:
                response = self._dynamodb.update_item(
                    TableName=self.table_name,
                    Key=to_item(NAT_PARTITION, NAT_WINDOW, {}),
                    UpdateExpression=(
                        "SET leases.#lease = :expires, #state = :open, "
                        "opened_at = if_not_exists(opened_at, :now) REMOVE closing_since"
                    ),
                    ConditionExpression=(
                        "attribute_exists(leases) AND "
                        "(#state <> :closing OR closing_since < :stale)"
                    ),
                    ExpressionAttributeNames={"#lease": lease_id, "#state": "state"},
                    ExpressionAttributeValues={
                        ":expires": {"S": iso(expires_at)},
                        ":open": {"S": WindowState.OPEN.value},
                        ":closing": {"S": WindowState.CLOSING.value},
                        ":now": {"S": iso(now)},
                        ":stale": {"S": iso(now - stale_closing)},
                    },
                    ReturnValues="ALL_NEW",
                )
                return _window_from(response["Attributes"])
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise
                if attempt == 0 and self.window().state is not WindowState.CLOSING:
                    self._ensure_window()
                    continue
                raise WindowClosing("the NAT window is being closed by another run") from exc
        raise WindowClosing("the NAT window could not be joined")

    def leave_window(self, lease_ids: Sequence[str]) -> NatWindow:
        if not lease_ids:
            return self.window()
        names = {f"#lease{index}": lease for index, lease in enumerate(lease_ids)}
        try:
            response = self._dynamodb.update_item(
                TableName=self.table_name,
                Key=to_item(NAT_PARTITION, NAT_WINDOW, {}),
                UpdateExpression="REMOVE " + ", ".join(f"leases.{name}" for name in names),
                ConditionExpression="attribute_exists(leases)",
                ExpressionAttributeNames=names,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return self.window()
            raise
        return _window_from(response["Attributes"])

    def begin_closing(self, now: datetime, stale_closing: timedelta) -> bool:
        """Claim the right to remove the route: only when no lease is held."""
        return condition_held(
            lambda: self._dynamodb.update_item(
                TableName=self.table_name,
                Key=to_item(NAT_PARTITION, NAT_WINDOW, {}),
                UpdateExpression="SET #state = :closing, closing_since = :now",
                ConditionExpression=(
                    "(attribute_not_exists(leases) OR size(leases) = :zero) AND "
                    "(attribute_not_exists(#state) OR #state <> :closing OR closing_since < :stale)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":closing": {"S": WindowState.CLOSING.value},
                    ":now": {"S": iso(now)},
                    ":stale": {"S": iso(now - stale_closing)},
                    ":zero": {"N": "0"},
                },
            )
        )

    def finish_closing(self, now: datetime) -> None:
        try:
            self._dynamodb.update_item(
                TableName=self.table_name,
                Key=to_item(NAT_PARTITION, NAT_WINDOW, {}),
                UpdateExpression=(
                    "SET #state = :closed, closed_at = :now, "
                    "leases = if_not_exists(leases, :empty) REMOVE opened_at, closing_since"
                ),
                ConditionExpression="#state = :closing",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":closed": {"S": WindowState.CLOSED.value},
                    ":closing": {"S": WindowState.CLOSING.value},
                    ":now": {"S": iso(now)},
                    ":empty": {"M": {}},
                },
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


@dataclass(frozen=True)
class FreshnessUpdate:
    """What a freshness check read from ECR for one image, and the status that follows."""

    reference: str
    expected_status: ImageStatus  # the status the check read; the write holds only if unchanged
    status: ImageStatus
    checked_at: datetime
    cached_digest: str | None = None
    cached_at: datetime | None = None
    last_pulled_at: datetime | None = None


@dataclass(frozen=True)
class ImageSettlement:
    """What a finished warm-up learned about one image from ECR."""

    reference: str
    status: ImageStatus
    checked_at: datetime
    cached_digest: str | None = None
    cached_at: datetime | None = None
    last_pulled_at: datetime | None = None
    error: str | None = None


def _window_from(item: Mapping[str, Any] | None) -> NatWindow:
    if not item:
        return NatWindow()
    plain = from_item(item)
    plain.pop("pk", None)
    plain.pop("sk", None)
    return NatWindow.model_validate(plain)
