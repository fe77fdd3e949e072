# syntax=docker/dockerfile:1
# Training on NVIDIA GPUs: `pneumo train`, alone or under `torchrun` (DDP, several nodes).
#
#   docker build -f docker/train.Dockerfile -t pneumo-train:0.1.0 .
#   docker run --rm --gpus all --shm-size 8g -e PNEUMO_ROOT=s3://my-bucket/pneumo \
#     -e PNEUMO_MLFLOW_TRACKING_URI=http://mlflow.internal:5000 pneumo-train:0.1.0 \
#     train -c configs/default.yaml
#
# torch comes from PyPI: its Linux wheels carry their own CUDA 13.0 runtime, cuDNN and NCCL,
# so the base image only needs to match that CUDA major version (the `base` flavour: no
# second copy of the libraries). The host needs an NVIDIA driver for CUDA 13 (>= 580) and the
# NVIDIA Container Toolkit (or, on Kubernetes, the NVIDIA device plugin).

ARG PYTHON_IMAGE=python:3.11-slim
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-base-ubuntu24.04

# --- build: pneumo's own wheel (pure Python), built by the locked hatchling -------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY requirements/build.lock requirements/
RUN pip install --no-cache-dir --require-hashes --requirement requirements/build.lock
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

# --- final: CUDA base, Ubuntu's Python in a virtual environment, requirements/train.lock, pneumo -
FROM ${CUDA_IMAGE}
# Ubuntu's own Python (3.12 on 24.04); its versions follow the base image's security updates.
# requirements/train.lock is compiled for it (Python 3.12, manylinux_2_28 x86_64).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && groupadd --system --gid 10001 pneumo \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/pneumo pneumo \
    && install -d -o 10001 -g 10001 /app
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The train extra from its lock, every file checked against its hash: torch and torchvision are
# the pair the project pins (requirements/constraints.txt = the Makefile's TORCH_VERSION and
# TORCHVISION_VERSION), their CUDA libraries and everything else at the locked versions.
RUN --mount=type=bind,source=requirements/train.lock,target=/tmp/train.lock \
    pip install --require-hashes --only-binary=:all: --requirement /tmp/train.lock
# Then pneumo itself, without dependencies: the lock has them all.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --no-deps /wheels/pneumo-*.whl
WORKDIR /app
# The experiment configs, so that `pneumo train -c configs/….yaml` works as in the repository.
COPY --chown=10001:10001 configs/ configs/
USER 10001:10001
ENTRYPOINT ["pneumo"]
CMD ["--help"]
