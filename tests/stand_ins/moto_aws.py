"""moto's server (`moto_server`), with one answer corrected to what AWS sends: DescribeFeatureGroup
of a group that does not exist is `ResourceNotFound` (HTTP 400) on AWS, a 500 (an uncaught
KeyError) in moto — deploy's comparison reads a feature group before creating it. And one
operation moto lacks, UpdateEndpoint (deploy-online rolls an endpoint to a new endpoint
config): the endpoint takes the new config's variants at once and stays InService, and its
LastDeploymentConfig is the DeploymentConfig it was given. Importing this module patches moto
(the in-process `mock_aws` too).

Run as `python tests/stand_ins/moto_aws.py -H 127.0.0.1 -p PORT` (the arguments of moto_server)."""

from __future__ import annotations

from typing import Any

from moto import server
from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

_describe = SageMakerModelBackend.describe_feature_group


def describe_feature_group(self: SageMakerModelBackend, feature_group_name: str) -> Any:
    try:
        return _describe(self, feature_group_name)
    except KeyError:
        raise ResourceNotFound(f"Resource Not Found: Amazon SageMaker can't find a FeatureGroup with name {feature_group_name}") from None


def update_endpoint(self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str, deployment_config: Any) -> str:
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        raise ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
    config = self.describe_endpoint_config(endpoint_config_name)
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.last_deployment_config = deployment_config
    return endpoint.arn


def update_endpoint_action(self: SageMakerResponse) -> ActionResult:
    arn = self.sagemaker_backend.update_endpoint(self._get_param("EndpointName"), self._get_param("EndpointConfigName"), self._get_param("DeploymentConfig"))
    return ActionResult({"EndpointArn": arn})


SageMakerModelBackend.describe_feature_group = describe_feature_group  # type: ignore[method-assign]
SageMakerModelBackend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
SageMakerResponse.update_endpoint = update_endpoint_action  # type: ignore[attr-defined]

if __name__ == "__main__":
    server.main()
