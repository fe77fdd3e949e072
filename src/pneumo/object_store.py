"""One storage configuration for every client of the bucket, and its failures said plainly.

fsspec takes the endpoint, region and credentials as arguments (:meth:`Settings.fs_options`);
MLflow's artifact client (boto3) and DVC read only the environment. :func:`export_environment`
puts the same settings there, so ``PNEUMO_S3_ENDPOINT_URL`` alone sends training's artifacts,
the registry's downloads and the service's model to the same endpoint as everything else.

:func:`storage_failure` turns what botocore, s3fs and MLflow raise when the endpoint is
unreachable, the credentials are wrong or missing, the bucket does not exist or access is
refused into one :class:`PneumoError` that names the endpoint or URL and what to set.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pneumo.errors import PneumoError
from pneumo.settings import Settings

log = logging.getLogger(__name__)

ENDPOINT_ENV = "MLFLOW_S3_ENDPOINT_URL"
REGION_ENV = "AWS_DEFAULT_REGION"
# fsspec's s3 option → the variable boto3 (MLflow, DVC) reads for it.
CREDENTIAL_ENV = {
    "key": "AWS_ACCESS_KEY_ID",
    "secret": "AWS_SECRET_ACCESS_KEY",
    "token": "AWS_SESSION_TOKEN",
    "profile": "AWS_PROFILE",
}
CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to the bucket's keys; "
    "on Scaleway they are the API key's access and secret keys"
)


def client_environment(settings: Settings) -> dict[str, str]:
    """The variables that give an environment-only S3 client the settings' storage."""
    env: dict[str, str] = {}
    if settings.s3_endpoint_url:
        env[ENDPOINT_ENV] = settings.s3_endpoint_url
    if settings.s3_region:
        env[REGION_ENV] = settings.s3_region
    for option, variable in CREDENTIAL_ENV.items():
        value = settings.storage_options.get(option)
        if isinstance(value, str) and value:
            env[variable] = value
    return env


def export_environment(settings: Settings) -> None:
    """Put :func:`client_environment` into ``os.environ`` (MLflow reads nothing else).

    pneumo's settings win over a different value already there, with a warning naming both:
    two endpoints for one bucket is a mistake, and the one the rest of pneumo uses is this one.
    """
    for variable, value in client_environment(settings).items():
        before = os.environ.get(variable)
        if before is not None and before != value and variable in (ENDPOINT_ENV, REGION_ENV):
            log.warning(
                "%s=%s differs from pneumo's storage setting; using %s", variable, before, value
            )
        os.environ[variable] = value


# A tracking server that is down should fail a command in half a minute, not MLflow's four.
TRACKING_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
_warned: set[str] = set()


def prepare_tracking(settings: Settings) -> str:
    """The tracking URI for an MLflow client, with the environment that client needs.

    Exports the storage settings (:func:`export_environment`), quietens MLflow's and alembic's
    INFO logs, makes a SQLite file's folder, and says once per process where a registry that
    only this machine can see lives (the root on object storage, no tracking server set).
    """
    export_environment(settings)
    for variable, value in TRACKING_RETRIES.items():
        os.environ.setdefault(variable, value)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///"))
        database.parent.mkdir(parents=True, exist_ok=True)
        if settings.local_registry_only and uri not in _warned:
            _warned.add(uri)
            log.warning(
                "warning: the MLflow registry is %s, visible on this machine only (the root is "
                "%s); set PNEUMO_MLFLOW_TRACKING_URI to a tracking server to share it",
                database,
                settings.root,
            )
    return uri


_checked: set[tuple[str, str]] = set()


def check_bucket(fs: Any, path: str, settings: Settings) -> None:
    """Fail clearly, once per process and bucket, when ``path``'s bucket cannot be used.

    One ListObjectsV2 of at most one key under the path itself (what a policy limited to a
    prefix allows; pneumo lists there anyway). It runs before anything else touches the bucket,
    so a missing bucket is not mistaken for an empty one ("no dataset fetched yet"), and a
    refused key is told from a refused permission (a HEAD's 403 has no body to say which).
    """
    bucket, _, key = path.partition("/")
    seen = (str(settings.s3_endpoint_url), bucket)
    if not bucket or seen in _checked:
        return
    try:
        fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key, MaxKeys=1)
    except Exception as exc:
        failure = storage_failure(exc, settings, bucket)
        if failure is not None:
            raise failure from None
        raise
    _checked.add(seen)


def endpoint_of(settings: Settings) -> str:
    return settings.s3_endpoint_url or "AWS S3 (PNEUMO_S3_ENDPOINT_URL is not set)"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _client_error(exc: BaseException) -> tuple[str, str, str] | None:
    """(error code, operation, bucket) of a botocore ClientError in the chain."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict) or "Error" not in response:
        return None
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    if not code:
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        code = str(status or "")
    return code, str(getattr(exc, "operation_name", "") or ""), str(error.get("BucketName") or "")


def _where(settings: Settings, bucket: str = "") -> str:
    if bucket:
        return f"bucket {bucket!r}"
    roots = [u for u in (settings.root, settings.data_url, settings.prepared_url) if u]
    remote = [u for u in roots if "://" in u and not u.startswith("file://")]
    return f"{remote[0]}" if remote else "the bucket"


def storage_failure(exc: BaseException, settings: Settings, bucket: str = "") -> PneumoError | None:
    """A clear error for a storage failure anywhere in ``exc``'s chain; None if it is not one.

    ``bucket`` names the bucket when the caller knows it (the error itself rarely does)."""
    names = {type(e).__name__ for e in _chain(exc)}
    endpoint = endpoint_of(settings)
    for link in _chain(exc):
        kind = type(link).__name__
        if kind in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
            url = str(getattr(link, "kwargs", {}).get("endpoint_url", "")) or endpoint
            return PneumoError(
                f"cannot reach the S3 endpoint {_host(url)} ({url}): "
                + ("name not found" if "ClientConnectorDNSError" in names else "no connection"),
                hint="set PNEUMO_S3_ENDPOINT_URL to your provider's endpoint (e.g. "
                "https://s3.fr-par.scw.cloud for Scaleway), or unset it for AWS",
            )
        if kind in ("NoCredentialsError", "PartialCredentialsError"):
            return PneumoError(
                f"no S3 credentials for {_where(settings, bucket)} at {endpoint}",
                hint=CREDENTIALS_HINT,
            )
        if kind == "MlflowException" and str(link).startswith("API request to "):
            return _tracking_failure(str(link), settings)
        found = _client_error(link)
        if found is None:
            continue
        code, operation, named = found
        return _from_code(code, operation, named or bucket, settings)
    return None


def _from_code(code: str, operation: str, bucket: str, settings: Settings) -> PneumoError | None:
    endpoint = endpoint_of(settings)
    where = _where(settings, bucket)
    doing = f" ({operation})" if operation else ""
    if code == "NoSuchBucket":
        return PneumoError(
            f"{where} does not exist at {endpoint}{doing}",
            hint="create it (`scw object bucket create name=<bucket>`, `aws s3 mb s3://<bucket>`) "
            "or point PNEUMO_ROOT at a bucket that exists",
        )
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
        what = "secret key" if code == "SignatureDoesNotMatch" else "access key"
        return PneumoError(
            f"{endpoint} refused the S3 credentials for {where}: wrong {what} ({code})",
            hint=CREDENTIALS_HINT,
        )
    if code in ("AccessDenied", "AllAccessDisabled", "403"):
        reason = "access denied" if code != "403" else "403 Forbidden"
        return PneumoError(
            f"{endpoint} refused access to {where}{doing}: {reason}",
            hint="the credentials are wrong or lack permission on this bucket: "
            + CREDENTIALS_HINT
            + ", and check the bucket's policy",
        )
    return None


def _tracking_failure(message: str, settings: Settings) -> PneumoError | None:
    """MLflow's REST client gave up on the tracking server (after its retries)."""
    uri = settings.tracking_uri
    if "Max retries exceeded" in message or "Failed to establish" in message:
        reason = "name not found" if "NameResolution" in message else "no connection"
    elif "error code 401" in message or "error code 403" in message:
        reason = "it refused this client (401/403: check the server's credentials)"
    else:
        return None
    return PneumoError(
        f"cannot use the MLflow tracking server {uri}: {reason}",
        hint="start it, or set PNEUMO_MLFLOW_TRACKING_URI to the server every machine shares "
        "(unset: a SQLite registry under PNEUMO_ROOT)",
    )


def _host(url: str) -> str:
    body = url.split("://", 1)[-1]
    return body.split("/", 1)[0]
