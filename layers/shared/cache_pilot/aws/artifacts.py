"""The artifact bucket: each batch's document for the build, and the build's report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def batch_key(batch_id: str) -> str:
    return f"batches/{batch_id}/batch.json"


def report_key(batch_id: str) -> str:
    return f"batches/{batch_id}/report.json"


def put_document(s3: S3Client, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_document(s3: S3Client, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when it does not exist (a build that died before writing)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
