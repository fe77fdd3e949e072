"""fsspec helpers: one code path for local folders and S3-compatible object storage.

Every dataset, manifest, cache shard and report goes through these functions. Writes are atomic:
local files are written under a temporary name in the same folder and renamed into place;
objects are uploaded whole (an S3 PUT is all-or-nothing). An interrupted stage therefore never
leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import fsspec

from pneumo.object_store import check_bucket
from pneumo.settings import Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd

TMP_MARK = ".tmp-"


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def strip_file_scheme(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def join(base: str, *parts: str) -> str:
    """Join URL or path segments with '/', keeping the scheme."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def name_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def parent_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[0]


def fs_for(url: str, settings: Settings | None = None) -> tuple[Any, str]:
    """The filesystem for ``url`` and the path inside it."""
    settings = settings or get_settings()
    fs, path = fsspec.core.url_to_fs(url, **settings.fs_options(url))
    if url.startswith(("s3://", "s3a://")):
        check_bucket(fs, path, settings)
    return fs, path


def absolute(url: str) -> str:
    """Local paths made absolute (so they survive a change of directory); URLs unchanged."""
    if is_remote(url):
        return url.rstrip("/")
    return str(Path(strip_file_scheme(url)).expanduser().resolve())


def exists(url: str, settings: Settings | None = None) -> bool:
    fs, path = fs_for(url, settings)
    return bool(fs.exists(path))


def isdir(url: str, settings: Settings | None = None) -> bool:
    fs, path = fs_for(url, settings)
    return bool(fs.isdir(path))


def read_bytes(url: str, settings: Settings | None = None) -> bytes:
    if not is_remote(url):
        return Path(strip_file_scheme(url)).read_bytes()
    fs, path = fs_for(url, settings)
    return bytes(fs.cat_file(path))


def read_text(url: str, settings: Settings | None = None) -> str:
    return read_bytes(url, settings).decode("utf-8")


def size_and_mtime(url: str, settings: Settings | None = None) -> tuple[int, str]:
    """A cheap fingerprint of a file: its size and its modification time or ETag."""
    if not is_remote(url):
        st = Path(strip_file_scheme(url)).stat()
        return st.st_size, str(st.st_mtime_ns)
    fs, path = fs_for(url, settings)
    info = fs.info(path)
    stamp = info.get("ETag") or info.get("LastModified") or info.get("mtime") or ""
    return int(info.get("size", 0)), str(stamp)


def _local_atomic_path(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def write_bytes(url: str, data: bytes, settings: Settings | None = None) -> None:
    """Write ``data`` to ``url`` atomically (see :func:`atomic_open`; one PUT on S3)."""
    if not is_remote(url):
        with atomic_open(url, settings) as fh:
            fh.write(data)
        return
    fs, path = fs_for(url, settings)
    fs.pipe_file(path, data)


def write_text(url: str, text: str, settings: Settings | None = None) -> None:
    write_bytes(url, text.encode("utf-8"), settings)


@contextlib.contextmanager
def atomic_open(
    url: str, settings: Settings | None = None, durable: bool = True
) -> Iterator[IO[bytes]]:
    """Open ``url`` for binary writing; it appears under its name only if the block succeeds.

    For object storage the bytes are staged in a local temporary file and uploaded once the
    block has finished, so a failure never commits a partial object. ``durable=False`` skips
    the fsync (still atomic against a killed process; used for the many small files of an
    archive, which a completion marker covers).
    """
    if not is_remote(url):
        final = Path(strip_file_scheme(url))
        tmp = _local_atomic_path(final)
        try:
            with tmp.open("wb") as fh:
                yield fh
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            tmp.replace(final)
        finally:
            tmp.unlink(missing_ok=True)
        return
    fs, path = fs_for(url, settings)
    with tempfile.NamedTemporaryFile(prefix="pneumo-upload-", delete=False) as fh:
        staged = Path(fh.name)
        try:
            yield fh
        except BaseException:
            fh.close()
            staged.unlink(missing_ok=True)
            raise
    try:
        fs.put_file(str(staged), path)
    finally:
        staged.unlink(missing_ok=True)


def open_read(url: str, settings: Settings | None = None) -> IO[bytes]:
    if not is_remote(url):
        return Path(strip_file_scheme(url)).open("rb")
    fs, path = fs_for(url, settings)
    handle: IO[bytes] = fs.open(path, "rb")
    return handle


def makedirs(url: str, settings: Settings | None = None) -> None:
    if not is_remote(url):
        Path(strip_file_scheme(url)).mkdir(parents=True, exist_ok=True)
    # Object stores have no folders: nothing to make.


def listdir(url: str, settings: Settings | None = None) -> list[str]:
    """Names (not paths) of the entries directly under ``url``; empty if it does not exist."""
    fs, path = fs_for(url, settings)
    if not fs.exists(path):
        return []
    return sorted(name_of(p) for p in fs.ls(path, detail=False) if name_of(p) != name_of(path))


def find(url: str, settings: Settings | None = None) -> list[str]:
    """All files below ``url``, as paths relative to it, sorted."""
    fs, path = fs_for(url, settings)
    if not fs.exists(path):
        return []
    base = path.rstrip("/") + "/"
    return sorted(p[len(base) :] for p in fs.find(path) if p.startswith(base))


def remove(url: str, settings: Settings | None = None) -> None:
    fs, path = fs_for(url, settings)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def remove_stale_temporaries(url: str, settings: Settings | None = None) -> int:
    """Delete temporary files an interrupted run left in the local folder ``url``."""
    if is_remote(url):
        return 0
    folder = Path(strip_file_scheme(url))
    if not folder.is_dir():
        return 0
    stale = [p for p in folder.iterdir() if p.name.startswith(".") and TMP_MARK in p.name]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def find_with_stamps(url: str, settings: Settings | None = None) -> dict[str, str]:
    """Every file below ``url`` (relative path → "size:stamp"), from one listing.

    The stamp (mtime locally, ETag on S3) lets a re-run tell unchanged inputs without reading them.
    """
    if not is_remote(url):
        root = Path(strip_file_scheme(url))
        out: dict[str, str] = {}
        for folder, _dirs, files in os.walk(root):
            for name in files:
                st = Path(folder, name).stat()
                rel = os.path.relpath(Path(folder, name), root).replace(os.sep, "/")
                out[rel] = f"{st.st_size}:{st.st_mtime_ns}"
        return dict(sorted(out.items()))
    fs, path = fs_for(url, settings)
    if not fs.exists(path):
        return {}
    base = path.rstrip("/") + "/"
    found = fs.find(path, detail=True)
    return {
        p[len(base) :]: f"{info.get('size', 0)}:{info.get('ETag') or info.get('LastModified', '')}"
        for p, info in sorted(found.items())
        if p.startswith(base)
    }


def read_json(url: str, settings: Settings | None = None) -> Any:
    return json.loads(read_text(url, settings))


def write_json(
    url: str,
    value: Any,
    settings: Settings | None = None,
    *,
    indent: int | None = 2,
    strict: bool = False,
) -> None:
    """``value`` as JSON, atomically; ``strict`` refuses NaN and infinities (strict JSON)."""
    text = json.dumps(value, indent=indent, allow_nan=not strict)
    write_text(url, text + ("\n" if indent is not None else ""), settings)


def read_table(url: str, settings: Settings | None = None) -> pd.DataFrame:
    """A Parquet file (a manifest, predictions) as a DataFrame, in one read."""
    import pandas as pd

    return pd.read_parquet(io.BytesIO(read_bytes(url, settings)))


def write_table(url: str, frame: pd.DataFrame, settings: Settings | None = None) -> None:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    write_bytes(url, buf.getvalue(), settings)


def expand(
    inputs: list[str], suffixes: tuple[str, ...], settings: Settings | None = None
) -> list[str]:
    """Files named by ``inputs`` (paths or fsspec URLs of files, folders or glob patterns), in
    order, each once. A folder gives its files below it whose names end in ``suffixes`` (or
    have no suffix: DICOM files often have none), hidden ones left out; a file or a pattern
    gives what it names. A name that matches nothing raises FileNotFoundError naming it."""
    found: dict[str, None] = {}
    for item in inputs:
        fs, path = fs_for(item, settings)
        prefix = item.split("://", 1)[0] + "://" if is_remote(item) else ""
        if any(c in path for c in "*?["):
            matches = sorted(p for p in fs.glob(path) if fs.isfile(p))
        elif fs.isdir(path):
            matches = sorted(
                p
                for p in fs.find(path)
                if not name_of(p).startswith(".")
                and (name_of(p).lower().endswith(suffixes) or "." not in name_of(p))
            )
        elif fs.exists(path):
            matches = [path]
        else:
            raise FileNotFoundError(item)
        if not matches:
            raise FileNotFoundError(item)
        for match in matches:
            found[prefix + match if prefix else absolute(match)] = None
    return list(found)
