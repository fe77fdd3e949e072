# syntax=docker/dockerfile:1
# The inference service, `pneumo serve`: FastAPI + ONNX Runtime, no torch.
#
#   docker build -f docker/serve.Dockerfile -t pneumo-serve:0.1.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 \
#     -e PNEUMO_MLFLOW_TRACKING_URI=http://mlflow.internal:5000 pneumo-serve:0.1.0
#
# tests/integration/test_deploy_files.py lints this file with hadolint, starts the final
# stage's CMD with its ENV against a registered model and runs its HEALTHCHECK command.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: every file of requirements/serve.lock (hash-checked), and pneumo's wheel -------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY requirements/build.lock requirements/serve.lock requirements/
# pip and hatchling from their lock; pneumo built by that hatchling, without its dependencies.
RUN pip install --no-cache-dir --require-hashes --requirement requirements/build.lock \
    && pip download --no-cache-dir --require-hashes --only-binary=:all: --dest /wheels \
        --requirement requirements/serve.lock \
    && cp requirements/serve.lock /wheels/serve.lock
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels/pneumo .

# --- final: installed from those wheels alone; no compiler, no pip cache, no torch ---------
# The lock's files first, each checked against its hash again, then pneumo with --no-deps: the
# image holds requirements/serve.lock (the versions the tests run with) and pneumo, nothing else.
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels --require-hashes \
        --requirement /wheels/serve.lock \
    && pip install --no-index --no-deps /wheels/pneumo/pneumo-*.whl \
    && groupadd --system --gid 10001 pneumo \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/pneumo pneumo \
    && install -d -o 10001 -g 10001 /app
WORKDIR /app
# Listen on every interface inside the container (the default, 127.0.0.1, is for laptops).
ENV PNEUMO_SERVE_HOST=0.0.0.0 \
    PNEUMO_SERVE_PORT=8000
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
EXPOSE 8000
# No curl in the slim image: Python's urllib; any non-2xx answer or no answer exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PNEUMO_SERVE_PORT', '8000') + '/healthz', timeout=4)"]
CMD ["pneumo", "serve"]
