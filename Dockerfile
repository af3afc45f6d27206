# syntax=docker/dockerfile:1
# The mlcompile runtime image: what the profiles' `images.runtime` names and every cloud
# pipeline step runs as `python -m mlcompile.runtime <step> --config … --input … --output …`.
#
#   docker build -t ghcr.io/acme/mlcompile-runtime:0.1.0 .
#   docker build --build-arg CLOUD_FS="gcsfs" -t us-docker.pkg.dev/acme-ml-prod/ml/mlcompile-runtime:0.1.0 .
#   docker run --rm ghcr.io/acme/mlcompile-runtime:0.1.0 python -m mlcompile.runtime --help
#   docker run --rm -p 8080:8080 -v $PWD/model:/opt/ml/model ghcr.io/acme/mlcompile-runtime:0.1.0 serve
#
# CLOUD_FS: the fsspec filesystems the steps read artifacts and sources through
# (gs:// gcsfs, s3:// s3fs, abfss:// adlfs); all three by default.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG CLOUD_FS="gcsfs s3fs adlfs"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/mlcompile \
 && /opt/mlcompile/bin/pip install ".[local]" fsspec ${CLOUD_FS} \
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
