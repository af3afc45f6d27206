"""moto's server (`moto_server`), with the answers corrected to what AWS sends that the SageMaker
emulator corrects too (mlcompile.emulate.sagemaker.account.patch_moto): DescribeFeatureGroup of
a group that does not exist is `ResourceNotFound` (HTTP 400) on AWS, a 500 in moto — deploy's
comparison reads a feature group before creating it; UpdateEndpoint and TestEventPattern;
UpdateModelPackage without `CustomerMetadataProperties` (an approval), which keeps the version's
metadata on AWS where moto drops it.

Run as `python tests/stand_ins/moto_aws.py -H 127.0.0.1 -p PORT` (the arguments of moto_server)."""

from __future__ import annotations

from moto import server

from mlcompile.emulate.sagemaker.account import patch_moto

patch_moto()

if __name__ == "__main__":
    server.main()
