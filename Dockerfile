# syntax=docker/dockerfile:1
# The mlcompile runtime image: what the profiles' `images.runtime` names and every cloud
# pipeline step runs as `python -m mlcompile.runtime <step> --config … --input … --output …`.
#
#   docker build -t ghcr.io/acme/mlcompile-runtime:0.1.0 .
#   docker run --rm ghcr.io/acme/mlcompile-runtime:0.1.0 python -m mlcompile.runtime --help
#   docker run --rm -p 8080:8080 -v $PWD/model:/opt/ml/model ghcr.io/acme/mlcompile-runtime:0.1.0 serve
#
# One image for every platform: the `runtime` extra (pyproject.toml) installs the embedded
# runtime and what its steps and the platform-job launcher import there (kubernetes, the
# Vertex AI SDK, boto3, azure-identity, azureml-mlflow, and the gs:// s3:// abfss://
# filesystems); tests/test_runtime_image.py keeps that list complete.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/mlcompile \
 && /opt/mlcompile/bin/pip install ".[runtime]" \
 && printf '#!/bin/sh\nexec python -m mlcompile.runtime serve "$@"\n' > /opt/mlcompile/bin/serve \
 && chmod 755 /opt/mlcompile/bin/serve

FROM python:${PYTHON_VERSION}-slim
# libgomp: OpenMP for scikit-learn's histogram gradient boosting
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 mlcompile
COPY --from=build /opt/mlcompile /opt/mlcompile
ENV PATH=/opt/mlcompile/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
    GIT_PYTHON_REFRESH=quiet \
    MPLCONFIGDIR=/tmp/matplotlib
USER mlcompile
WORKDIR /home/mlcompile
# No ENTRYPOINT: each platform sets the command (`python -m mlcompile.runtime <step> …`),
# except two serving platforms: SageMaker runs `docker run <image> serve` (hence the `serve`
# script on PATH, from the build stage) and an Azure ML online deployment runs the image's
# own command (hence this CMD). See docs/serving.md.
CMD ["python", "-m", "mlcompile.runtime", "serve"]
