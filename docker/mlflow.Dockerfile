# syntax=docker/dockerfile:1
# The MLflow tracking server of compose.yaml: MLflow with the PostgreSQL driver (backend
# store) and boto3 (artifacts on MinIO or any S3 endpoint), which the upstream image lacks.
# The MLflow version is the one pneumo's client is tested with (.venv: mlflow 3.17.2).

ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install "mlflow==3.17.2" "psycopg2-binary==2.9.13" "boto3==1.43.117" \
    && groupadd --system --gid 10001 mlflow \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/mlflow mlflow
USER 10001:10001
WORKDIR /home/mlflow
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:5000/health', timeout=4)"]
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
