# syntax=docker/dockerfile:1
# The MLflow tracking server of compose.yaml: MLflow with the PostgreSQL driver (backend
# store) and boto3 (artifacts on MinIO or any S3 endpoint), which the upstream image lacks.
# Installed from requirements/mlflow.lock (requirements/mlflow.in, compiled with dev.lock as its
# constraints), every file checked against its hash: the MLflow version is the one pneumo's
# client is tested with (mlflow 3.17.2; tests/unit/test_locks.py checks they agree).

ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,source=requirements/mlflow.lock,target=/tmp/mlflow.lock \
    pip install --require-hashes --only-binary=:all: --requirement /tmp/mlflow.lock \
    && groupadd --system --gid 10001 mlflow \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/mlflow mlflow
USER 10001:10001
WORKDIR /home/mlflow
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:5000/health', timeout=4)"]
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
