"""What AWS itself provides to a stack, published in the embedded AWS: public SSM parameters
that name AWS-managed Lambda layers.

template.yaml takes the Powertools layer from its public parameter
(/aws/service/powertools/...). The functions run in-process with this environment's
Powertools, so the local layer only has to exist for CloudFormation to resolve the parameter
and for CreateFunction to accept the ARN.
"""

from __future__ import annotations

import base64
import io
import zipfile
from datetime import UTC, datetime

from moto.awslambda.models import lambda_backends
from moto.ssm.models import Parameter, ssm_backends

from cache_pilot_local.template import UnsupportedTemplateError

POWERTOOLS_PARAMETER_PREFIX = "/aws/service/powertools/python/"
POWERTOOLS_PUBLISHER_ACCOUNT = "017000801446"  # the account AWS publishes Powertools layers in


def publish_public_parameter(account_id: str, region: str, name: str) -> str:
    """Publish what the public parameter `name` names, and the parameter; return its value."""
    if not name.startswith(POWERTOOLS_PARAMETER_PREFIX):
        raise UnsupportedTemplateError(
            f"template.yaml reads the public parameter {name}, which the embedded AWS does not "
            "publish; teach local/cache_pilot_local/aws_managed.py what it stands for"
        )
    # .../python/<arch>/<runtime>/latest -> AWSLambdaPowertoolsPythonV3-python313-arm64
    architecture, runtime = name.removeprefix(POWERTOOLS_PARAMETER_PREFIX).split("/")[:2]
    layer_name = f"AWSLambdaPowertoolsPythonV3-{runtime.replace('.', '')}-{architecture}"
    version = _publish_layer(account_id, region, layer_name)
    value = f"arn:aws:lambda:{region}:{POWERTOOLS_PUBLISHER_ACCOUNT}:layer:{layer_name}:{version}"
    parameters = ssm_backends[account_id][region]._parameters
    if not parameters.get(name):
        # PutParameter refuses /aws/ names, as AWS does: AWS publishes these itself.
        parameters[name].append(
            Parameter(  # type: ignore[abstract]
                account_id=account_id,
                name=name,
                value=value,
                parameter_type="String",
                description="Published by the embedded AWS in place of AWS",
                allowed_pattern=None,
                keyid=None,
                last_modified_date=datetime.now(UTC),
                version=1,
                data_type="text",
            )
        )
    return parameters[name][-1].value or value


def _publish_layer(account_id: str, region: str, layer_name: str) -> int:
    """Publish the layer once; moto finds a layer version by its name and number."""
    backend = lambda_backends[account_id][region]
    existing = list(backend.list_layer_versions(layer_name))
    if existing:
        return int(existing[-1].version)
    layer = backend.publish_layer_version(
        {
            "LayerName": layer_name,
            "Content": {"ZipFile": base64.b64encode(_empty_layer_zip()).decode()},
            "Description": "Stands for the AWS-managed Powertools layer",
            "CompatibleRuntimes": ["python3.13"],
        }
    )
    return int(layer.version)


def _empty_layer_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("python/.keep", "")
    return buffer.getvalue()
