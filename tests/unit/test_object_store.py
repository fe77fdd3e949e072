"""One storage configuration for every client, and storage failures as one clear error."""

from __future__ import annotations

import logging
import os

import pytest
from botocore.exceptions import (  # type: ignore[import-untyped]
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from pneumo.object_store import client_environment, export_environment, storage_failure
from pneumo.settings import Settings


def _settings(**values: object) -> Settings:
    return Settings(root="s3://bkt/work", **values)  # type: ignore[arg-type]


def test_the_settings_reach_environment_only_clients() -> None:
    settings = _settings(
        s3_endpoint_url="https://s3.fr-par.scw.cloud",
        s3_region="fr-par",
        storage_options={"key": "AK", "secret": "SK", "anon": False},
    )
    assert client_environment(settings) == {
        "MLFLOW_S3_ENDPOINT_URL": "https://s3.fr-par.scw.cloud",
        "AWS_DEFAULT_REGION": "fr-par",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
    }
    assert client_environment(_settings()) == {}


def test_pneumo_s_endpoint_wins_over_a_different_mlflow_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "https://elsewhere.example")
    with caplog.at_level(logging.WARNING):
        export_environment(_settings(s3_endpoint_url="http://127.0.0.1:9000"))
    assert os.environ["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert "https://elsewhere.example" in caplog.text


def _client_error(code: str, operation: str, **error: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m", **error}}, operation)


def test_each_storage_failure_names_what_to_set() -> None:
    settings = _settings(s3_endpoint_url="http://127.0.0.1:9000")
    unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:9000/bkt/x")
    found = storage_failure(unreachable, settings)
    assert found is not None and "cannot reach the S3 endpoint 127.0.0.1:9000" in found.message
    assert "PNEUMO_S3_ENDPOINT_URL" in str(found.hint)

    missing = _client_error("NoSuchBucket", "PutObject", BucketName="gone")
    wrapped = FileNotFoundError("The specified bucket does not exist")
    wrapped.__cause__ = missing
    found = storage_failure(wrapped, settings)
    assert found is not None
    assert found.message == "bucket 'gone' does not exist at http://127.0.0.1:9000 (PutObject)"

    for code, words in (
        ("InvalidAccessKeyId", "wrong access key"),
        ("SignatureDoesNotMatch", "wrong secret key"),
        ("AccessDenied", "access denied"),
        ("403", "403 Forbidden"),
    ):
        found = storage_failure(_client_error(code, "HeadObject"), settings)
        assert found is not None and words in found.message, code
        assert "s3://bkt/work" in found.message
    found = storage_failure(NoCredentialsError(), settings)
    assert found is not None and "AWS_ACCESS_KEY_ID" in str(found.hint)


def test_a_tracking_server_that_is_down_is_named() -> None:
    from mlflow.exceptions import MlflowException

    settings = _settings(mlflow_tracking_uri="http://127.0.0.1:5999")
    down = MlflowException(
        "API request to http://127.0.0.1:5999/api/2.0/mlflow/runs/create failed with exception "
        "HTTPConnectionPool(host='127.0.0.1', port=5999): Max retries exceeded with url: ..."
    )
    found = storage_failure(down, settings)
    assert found is not None
    assert (
        found.message
        == "cannot use the MLflow tracking server http://127.0.0.1:5999: no connection"
    )


def test_other_errors_are_left_alone() -> None:
    settings = _settings()
    assert storage_failure(ValueError("bad"), settings) is None
    assert storage_failure(_client_error("InternalError", "GetObject"), settings) is None
    assert storage_failure(FileNotFoundError("/tmp/x"), settings) is None
