"""boto3 clients, built on first use so tests can start their emulated AWS first.

boto3 honours AWS_ENDPOINT_URL on its own, which is how every command and handler reaches the
embedded local AWS.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_codebuild import CodeBuildClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

_CONFIG = Config(
    retries={"mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=16,
)


class AwsClients:
    """One client per service, shared by the use cases of one process."""

    def __init__(self, session: boto3.Session | None = None) -> None:
        self._session = session or boto3.Session()

    @property
    def region(self) -> str:
        region = self._session.region_name
        if not region:
            raise RuntimeError("no AWS Region configured; set AWS_REGION or AWS_DEFAULT_REGION")
        return region

    @cached_property
    def ssm(self) -> SSMClient:
        return self._session.client("ssm", config=_CONFIG)

    @cached_property
    def ecr(self) -> ECRClient:
        return self._session.client("ecr", config=_CONFIG)

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self._session.client("dynamodb", config=_CONFIG)

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        return self._session.client("secretsmanager", config=_CONFIG)

    @cached_property
    def sts(self) -> STSClient:
        return self._session.client("sts", config=_CONFIG)

    @cached_property
    def events(self) -> EventBridgeClient:
        return self._session.client("events", config=_CONFIG)

    @cached_property
    def ec2(self) -> EC2Client:
        return self._session.client("ec2", config=_CONFIG)

    @cached_property
    def codebuild(self) -> CodeBuildClient:
        return self._session.client("codebuild", config=_CONFIG)

    @cached_property
    def s3(self) -> S3Client:
        return self._session.client("s3", config=_CONFIG)
