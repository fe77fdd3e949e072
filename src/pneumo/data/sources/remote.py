"""`pneumo fetch nih|kermany`: download the published files, unpack them, register the dataset.

Downloads go to a local folder (resuming needs a file to append to); the dataset itself is
written member by member through :mod:`pneumo.storage`, so it can live on local disk or in
object storage. Each archive (or plain file) that has been fully installed leaves a marker
``.extracted-NAME`` holding the archive's SHA-256 in the dataset folder: a re-run skips it
without downloading or even reading it, so the archives may be deleted once unpacked.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import shutil
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Literal

import requests
from tqdm import tqdm

from pneumo import __version__, storage
from pneumo.data.sources import catalog, datasets
from pneumo.data.sources.catalog import RemoteFile
from pneumo.data.sources.checksums import verified_sha256
from pneumo.data.sources.download import download
from pneumo.errors import DataError
from pneumo.settings import Settings, get_settings

log = logging.getLogger(__name__)

MARKER_PREFIX = ".extracted-"
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
_KERMANY_PREFIX = "chest_xray"
_JUNK = "__MACOSX"

MemberMap = Callable[[str], str | None]  # archive member path -> path in the dataset, or skip


def fetch_remote(
    source: Literal["nih", "kermany"],
    *,
    parts: list[int] | None = None,
    mirror: str | None = None,
    name: str | None = None,
    settings: Settings | None = None,
    files: list[RemoteFile] | None = None,
) -> datasets.Dataset:
    """Fetch ``source`` into ``settings.data/NAME`` and register it as the current dataset.

    ``parts`` (NIH only, 1-based) limits the image archives; an empty list fetches the label
    files alone (a metadata-only dataset). ``mirror`` serves every file as ``MIRROR/NAME``.
    ``files`` replaces the built-in catalog.
    """
    if source not in ("nih", "kermany"):
        raise DataError(f"unknown source {source!r}", hint="use 'nih' or 'kermany'")
    settings = settings or get_settings()
    dataset_name = datasets.check_name(name or source)
    chosen = select_files(catalog.files_for(source) if files is None else files, source, parts)
    if mirror:
        chosen = [with_mirror(f, mirror) for f in chosen]
    if storage.is_remote(settings.downloads):
        raise DataError(
            f"the download folder must be local, not {settings.downloads}",
            hint="set PNEUMO_DOWNLOAD_DIR to a local folder with room for the archives",
        )
    downloads = Path(storage.strip_file_scheme(settings.downloads)) / source
    target = storage.join(settings.data, dataset_name)
    storage.makedirs(target, settings)
    storage.remove_stale_temporaries(target, settings)
    with requests.Session() as session:
        session.headers["User-Agent"] = f"pneumo/{__version__}"
        for remote in chosen:
            _install(remote, source, downloads, target, settings, session)
    return datasets.register(target, source=source, name=dataset_name, settings=settings)


def is_archive(name: str) -> bool:
    return name.lower().endswith(_ARCHIVE_SUFFIXES)


def select_files(files: list[RemoteFile], source: str, parts: list[int] | None) -> list[RemoteFile]:
    """``files`` limited to the archives numbered in ``parts``; other files are always kept."""
    if parts is None:
        return list(files)
    if source != "nih":
        raise DataError(f"--parts applies to nih only, not {source}", hint="leave out --parts")
    archives = [f for f in files if is_archive(f.name)]
    bad = sorted({p for p in parts if not 1 <= p <= len(archives)})
    if bad:
        raise DataError(
            f"no NIH archive numbered {', '.join(map(str, bad))}: there are {len(archives)}",
            hint=f"choose part numbers from 1 to {len(archives)}",
        )
    wanted = {archives[p - 1].name for p in parts}
    return [f for f in files if not is_archive(f.name) or f.name in wanted]


def with_mirror(remote: RemoteFile, mirror: str) -> RemoteFile:
    if not mirror.startswith(("http://", "https://")):
        raise DataError(
            f"mirror must be an http(s) URL, not {mirror!r}",
            hint="give the URL of a folder that serves the files under their catalog names",
        )
    return dataclasses.replace(remote, url=f"{mirror.rstrip('/')}/{remote.name}")


def _install(
    remote: RemoteFile,
    source: str,
    downloads: Path,
    target: str,
    settings: Settings,
    session: requests.Session,
) -> None:
    marker = storage.join(target, MARKER_PREFIX + remote.name)
    if storage.exists(marker, settings):
        recorded = storage.read_text(marker, settings).strip()
        if remote.sha256 is None or recorded == remote.sha256.lower():
            log.info("%s: already in %s", remote.name, target)
            return
    local = download(
        remote.url,
        downloads / remote.name,
        size=remote.size,
        sha256=remote.sha256,
        md5=remote.md5,
        session=session,
    )
    digest = verified_sha256(local) or _sha256_of(local)
    if is_archive(remote.name):
        extract(local, target, _member_map(source, remote.name), settings)
    else:
        dest = storage.join(target, remote.name)
        with local.open("rb") as src, storage.atomic_open(dest, settings) as out:
            shutil.copyfileobj(src, out, 1 << 20)
    storage.write_text(marker, digest + "\n", settings)


def _member_map(source: str, archive_name: str) -> MemberMap:
    """Where each member goes: NIH under ``images_0NN/``, Kermany without ``chest_xray/``."""
    if source == "kermany":

        def kermany(path: str) -> str | None:
            parts = path.split("/")
            while len(parts) > 1 and parts[0] == _KERMANY_PREFIX:
                parts = parts[1:]
            return "/".join(parts)

        return kermany
    lower = archive_name.lower()
    stem = next(archive_name[: -len(s)] for s in _ARCHIVE_SUFFIXES if lower.endswith(s))
    return lambda path: f"{stem}/{path}"


def safe_member_path(member: str, archive: Path) -> str | None:
    """The member's normalised relative path; None for junk (``__MACOSX``, dot-files).

    Raises DataError for a member that would land outside the dataset folder.
    """
    path = member.replace("\\", "/")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or (len(path) > 1 and path[1] == ":"):
        raise DataError(
            f"refusing to extract {archive.name}: member {member!r} points outside the dataset "
            "folder",
            hint=f"the archive is damaged or not the published one; delete {archive} and fetch "
            "again, and check the URL or mirror it came from",
        )
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts or any(p.startswith(".") or p == _JUNK for p in parts):
        return None
    return "/".join(parts)


def extract(archive: Path, target: str, mapping: MemberMap, settings: Settings) -> int:
    """Write the regular members of ``archive`` (tar, tar.gz or zip) below ``target``.

    Each member is written atomically; a failure part-way leaves only whole files and no
    marker, so the next run unpacks the archive again.
    """
    count, folders = 0, set()
    bar = tqdm(desc=f"unpack {archive.name}", unit="file", file=sys.stderr, leave=False)
    try:
        with bar:
            for rel, stream in _members(archive, mapping):
                url = storage.join(target, rel)
                folders.add(storage.parent_of(url))
                with stream, storage.atomic_open(url, settings, durable=False) as out:
                    shutil.copyfileobj(stream, out, 1 << 20)
                count += 1
                bar.update()
    except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{archive.name} is damaged: {exc}",
            hint=f"delete {archive} and run the command again to download it anew",
        ) from exc
    if count == 0:
        raise DataError(f"{archive.name} contains no files", hint=f"delete {archive} and retry")
    for folder in folders:  # temporaries an interrupted earlier run left behind
        storage.remove_stale_temporaries(folder, settings)
    return count


def _members(archive: Path, mapping: MemberMap) -> Iterator[tuple[str, IO[bytes]]]:
    """(destination path, open member) for each file worth extracting, in archive order."""
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            # The central directory lists every name up front: refuse before writing anything.
            wanted = [(info, safe_member_path(info.filename, archive)) for info in infos]
            for info, rel in wanted:
                if info.is_dir() or rel is None:
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    _refuse_link(info.filename, archive)
                dest = mapping(rel)
                if dest is not None:
                    yield dest, zf.open(info)
        return
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:  # streamed: a .tar.gz is not read twice
            rel = safe_member_path(member.name, archive)
            if member.isdir() or rel is None:
                continue
            if not member.isfile():
                _refuse_link(member.name, archive)
            dest = mapping(rel)
            stream = tf.extractfile(member)
            if dest is not None and stream is not None:
                yield dest, stream


def _refuse_link(member: str, archive: Path) -> None:
    raise DataError(
        f"refusing to extract {archive.name}: member {member!r} is a link or special file",
        hint=f"the published archives hold plain files only; delete {archive} and fetch again",
    )


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
