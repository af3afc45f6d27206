"""moto's server (`moto_server`), with one answer corrected to what AWS sends: DescribeFeatureGroup
of a group that does not exist is `ResourceNotFound` (HTTP 400) on AWS, a 500 (an uncaught
KeyError) in moto — deploy's comparison reads a feature group before creating it.

Run as `python tests/stand_ins/moto_aws.py -H 127.0.0.1 -p PORT` (the arguments of moto_server)."""

from __future__ import annotations

from typing import Any

from moto import server
from moto.sagemaker.exceptions import ResourceNotFound
from moto.sagemaker.models import SageMakerModelBackend

_describe = SageMakerModelBackend.describe_feature_group


def describe_feature_group(self: SageMakerModelBackend, feature_group_name: str) -> Any:
    try:
        return _describe(self, feature_group_name)
    except KeyError:
        raise ResourceNotFound(f"Resource Not Found: Amazon SageMaker can't find a FeatureGroup with name {feature_group_name}") from None


SageMakerModelBackend.describe_feature_group = describe_feature_group  # type: ignore[method-assign]

if __name__ == "__main__":
    server.main()
