"""The cloud path on real servers on 127.0.0.1: moto's S3 server with a custom endpoint (as
Scaleway or MinIO would be), a real `mlflow server`, and `pneumo serve` in a second process
that knows only the tracking URI and the storage settings.

Each storage failure a user meets first (wrong endpoint, missing bucket, wrong keys, keys
without permission) must be one clear line and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import DEMO_SMALL
from tests.serving_support import free_port, post, running_service

pytestmark = pytest.mark.slow

SMALL = DEMO_SMALL
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _env(home: Path, **values: str) -> dict[str, str]:
    """A user's environment: no PNEUMO_*, MLFLOW_* or AWS_* but those given; its own HOME."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PNEUMO_", "MLFLOW_", "AWS_")) or k == "PNEUMO_TEST_DATA"
    }
    return {**keep, "HOME": str(home), **values}


def _pneumo(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pneumo", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text(errors="replace")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(url, timeout=5).status_code == 200:
                return
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.3)


@contextlib.contextmanager
def _server(args: list[str], ready: str, log: Path, env: dict[str, str]) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for(ready, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def authenticating_s3(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """moto's S3 server checking signatures: a bucket, and a user whose keys have no policy.

    The first three calls are unauthenticated (moto's INITIAL_NO_AUTH_ACTION_COUNT): they make
    the bucket, the user and the user's key; every later call must be signed by a known key.
    """
    import boto3  # type: ignore[import-untyped]

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _server(args, f"{endpoint}/moto-api/", tmp_path / "moto.log", env):
        options = {"endpoint_url": endpoint, "region_name": "us-east-1", **_boto(CREDENTIALS)}
        boto3.client("s3", **options).create_bucket(Bucket="bkt")
        iam = boto3.client("iam", **options)
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        yield (
            endpoint,
            {
                "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        )


def _boto(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


def _one_clear_line(proc: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for text in expected:
        assert text in errors[0] or text in proc.stderr, (text, proc.stderr)


def test_a_wrong_endpoint_or_a_missing_bucket_is_one_line(s3_endpoint: str, tmp_path: Path) -> None:
    import s3fs

    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}).mkdir("errors")
    closed = f"http://127.0.0.1:{free_port()}"
    wrong = _env(
        tmp_path, **CREDENTIALS, PNEUMO_ROOT="s3://errors/work", PNEUMO_S3_ENDPOINT_URL=closed
    )
    wrong["AWS_MAX_ATTEMPTS"] = "2"  # botocore's retries of a refused connection: 2 s, not 15
    _one_clear_line(
        _pneumo(["demo", "--no-serve", *SMALL], wrong, tmp_path),
        f"cannot reach the S3 endpoint 127.0.0.1:{closed.rsplit(':', 1)[1]}",
        "PNEUMO_S3_ENDPOINT_URL",
    )
    missing = {
        **wrong,
        "PNEUMO_ROOT": "s3://no-such-bucket/work",
        "PNEUMO_S3_ENDPOINT_URL": s3_endpoint,
    }
    _one_clear_line(
        _pneumo(["demo", "--no-serve", *SMALL], missing, tmp_path),
        "bucket 'no-such-bucket' does not exist at " + s3_endpoint,
        "create it",
    )
    # A missing bucket is not an empty one: `train` must not say "no dataset fetched yet".
    _one_clear_line(_pneumo(["train"], missing, tmp_path), "does not exist")
    nokeys = {k: v for k, v in wrong.items() if not k.startswith("AWS_")}
    nokeys.update(PNEUMO_S3_ENDPOINT_URL=s3_endpoint, AWS_CONFIG_FILE=str(tmp_path / "none"))
    nokeys["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    nokeys["AWS_EC2_METADATA_DISABLED"] = "true"
    _one_clear_line(
        _pneumo(["datasets"], nokeys, tmp_path), "no S3 credentials", "AWS_ACCESS_KEY_ID"
    )


def test_wrong_keys_and_keys_without_permission_are_one_line(
    authenticating_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    endpoint, keys = authenticating_s3
    base = {"PNEUMO_ROOT": "s3://bkt/work", "PNEUMO_S3_ENDPOINT_URL": endpoint}
    unknown = _env(tmp_path, **{**keys, "AWS_ACCESS_KEY_ID": "AKIAUNKNOWN000000000"}, **base)
    _one_clear_line(
        _pneumo(["demo", "--no-serve", *SMALL], unknown, tmp_path),
        "refused the S3 credentials for bucket 'bkt': wrong access key",
    )
    bad_secret = _env(tmp_path, **{**keys, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}, **base)
    _one_clear_line(_pneumo(["train"], bad_secret, tmp_path), "wrong secret key")
    no_policy = _env(tmp_path, **keys, **base)
    _one_clear_line(_pneumo(["train"], no_policy, tmp_path), "refused access", "access denied")


def _png() -> bytes:
    pixels = (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_the_cycle_on_s3_with_a_shared_tracking_server(s3_endpoint: str, tmp_path: Path) -> None:
    """demo on s3:// with a real MLflow server; serve from a second process and machine-like
    home that has only the tracking URI and the storage settings (no PNEUMO_ROOT)."""
    import s3fs

    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}).mkdir("cycle")
    port = free_port()
    tracking = f"http://127.0.0.1:{port}"
    server_env = {**os.environ, **CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}
    mlflow = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--default-artifact-root", "s3://cycle/mlflow",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    shared = {**CREDENTIALS, "PNEUMO_S3_ENDPOINT_URL": s3_endpoint}
    with _server(mlflow, f"{tracking}/health", tmp_path / "mlflow.log", server_env):
        trainer_home = tmp_path / "trainer"
        trainer_home.mkdir()
        env = _env(
            trainer_home,
            **shared,
            PNEUMO_ROOT="s3://cycle/work",
            PNEUMO_MLFLOW_TRACKING_URI=tracking,
        )
        demo = _pneumo(["demo", "--no-serve", *SMALL], env, trainer_home)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "version 1 is now the champion" in demo.stdout
        assert "visible on this machine only" not in demo.stderr
        assert not (trainer_home / ".cache" / "pneumo" / "mlflow.db").exists()
        assert not (trainer_home / "pneumo-work").exists()  # nothing local: all in the bucket

        from mlflow import MlflowClient

        client = MlflowClient(tracking, registry_uri=tracking)
        version = client.get_model_version("pneumonia", "1")
        assert version.run_id is not None and version.source is not None
        experiment = client.get_run(version.run_id).info.experiment_id
        assert version.source.startswith(f"runs:/{version.run_id}/")
        assert version.run_link == f"{tracking}/#/experiments/{experiment}/runs/{version.run_id}"
        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
        assert fs.find("cycle/work/mlartifacts")  # the run's artifacts went to the custom endpoint

        server_home = tmp_path / "server"
        # the upload is noise, out of distribution for any model: score it anyway (the policy
        # is tested in test_serve_policy.py); its score proves the reference came from S3
        serve_env = {
            **shared, "HOME": str(server_home), "PNEUMO_MLFLOW_TRACKING_URI": tracking,
            "PNEUMO_INPUT_OOD": "false",
        }  # fmt: skip
        with running_service(serve_env, server_home / "cwd", poll_seconds="0") as service:
            answer = post(service.url, _png())
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["model"] == {"name": "pneumonia", "version": "1"}
            assert 0.0 <= body["probability"] <= 1.0
            assert body["ood_score"] > 0 and body["ood_threshold"] is None  # scored, not judged
            assert tracking in service.logs()


def test_a_remote_root_without_a_tracking_server_names_its_local_registry(
    s3_endpoint: str, tmp_path: Path
) -> None:
    import s3fs

    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}).mkdir("local-registry")
    env = _env(
        tmp_path,
        **CREDENTIALS,
        PNEUMO_ROOT="s3://local-registry/work",
        PNEUMO_S3_ENDPOINT_URL=s3_endpoint,
    )
    proc = _pneumo(["promote", "--history"], env, tmp_path)
    database = tmp_path / ".cache" / "pneumo" / "mlflow.db"
    assert f"the MLflow registry is {database}, visible on this machine only" in proc.stderr
    assert "PNEUMO_MLFLOW_TRACKING_URI" in proc.stderr
