"""Where the registry credentials come from: standard input locally, ECR on AWS.

ECR's GetAuthorizationToken returns base64("AWS:<password>"), valid for 12 hours. boto3 is used
when it can be imported; the stock CodeBuild image always has the AWS CLI, so without boto3
the token comes from ``aws ecr get-authorization-token``.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import shutil
import subprocess
from typing import TextIO

from cache_pilot.warm.transport import Credentials

AWS_CLI_TIMEOUT_SECONDS = 120


class CredentialsUnavailable(Exception):
    """No credentials could be had; the message says why and what to do."""


def credentials_from_stdin(username: str, stream: TextIO) -> Credentials:
    password = stream.read().rstrip("\r\n")
    if not password:
        raise CredentialsUnavailable("--password-stdin read an empty password")
    return Credentials(username=username, password=password)


def ecr_credentials(region: str) -> Credentials:
    if importlib.util.find_spec("boto3") is not None:
        token = _token_from_boto3(region)
    else:
        token = _token_from_aws_cli(region)
    return credentials_from_ecr_token(token)


def credentials_from_ecr_token(token: str) -> Credentials:
    try:
        username, colon, password = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        username, colon, password = "", "", ""
    if not colon or not username or not password:
        raise CredentialsUnavailable("the ECR authorization token is not base64('user:password')")
    return Credentials(username=username, password=password)


def _token_from_boto3(region: str) -> str:
    import boto3

    try:
        answer = boto3.client("ecr", region_name=region).get_authorization_token()
        token = answer["authorizationData"][0]["authorizationToken"]
    except Exception as error:  # botocore's errors, missing credentials, an empty answer
        raise CredentialsUnavailable(
            f"ECR GetAuthorizationToken in {region} failed: {error}"
        ) from None
    return token


def _token_from_aws_cli(region: str) -> str:
    aws = shutil.which("aws")
    if aws is None:
        raise CredentialsUnavailable(
            "--ecr-auth needs boto3 or the AWS CLI ('aws'), and neither is available"
        )
    command = [aws, "ecr", "get-authorization-token", "--region", region, "--output", "json"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=AWS_CLI_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CredentialsUnavailable(f"running the AWS CLI failed: {error}") from None
    if done.returncode != 0:
        raise CredentialsUnavailable(
            f"aws ecr get-authorization-token --region {region} failed "
            f"(exit {done.returncode}): {done.stderr.strip()[:500]}"
        )
    try:
        token = json.loads(done.stdout)["authorizationData"][0]["authorizationToken"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise CredentialsUnavailable(
            "aws ecr get-authorization-token printed no authorizationData"
        ) from None
    if not isinstance(token, str):
        raise CredentialsUnavailable("aws ecr get-authorization-token printed no token")
    return token
