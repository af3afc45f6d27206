"""moto's server (`moto_server`), with the answers corrected to what AWS sends that the SageMaker
emulator corrects too (mlcompile.emulate.sagemaker.account.patch_moto): DescribeFeatureGroup of
a group that does not exist is `ResourceNotFound` (HTTP 400) on AWS, a 500 in moto — deploy's
comparison reads a feature group before creating it; UpdateEndpoint and TestEventPattern.

Also corrected here: UpdateModelPackage without `CustomerMetadataProperties` (an approval) keeps
the version's metadata on AWS; moto drops it.

Run as `python tests/stand_ins/moto_aws.py -H 127.0.0.1 -p PORT` (the arguments of moto_server)."""

from __future__ import annotations

from typing import Any

from moto import server
from moto.sagemaker.models import SageMakerModelBackend

from mlcompile.emulate.sagemaker.account import patch_moto

patch_moto()
_update_model_package = SageMakerModelBackend.update_model_package


def _keeping_metadata(self: SageMakerModelBackend, model_package_arn: str, **request: Any) -> str:
    if request.get("customer_metadata_properties") is None:
        package = self.model_packages.get(self.model_package_name_mapping.get(model_package_arn, model_package_arn))
        request["customer_metadata_properties"] = getattr(package, "customer_metadata_properties", None)
    return str(_update_model_package(self, model_package_arn, **request))


if getattr(_update_model_package, "__name__", "") != _keeping_metadata.__name__:
    SageMakerModelBackend.update_model_package = _keeping_metadata  # type: ignore[method-assign]

if __name__ == "__main__":
    server.main()
