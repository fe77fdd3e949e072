"""Resumable, verified HTTP download of one file to a local path.

The public archives are several GB each and their hosts drop connections, so a download keeps
its bytes in ``NAME.part``, resumes with an HTTP Range request (after a dropped connection, or
in a later run), and only renames the file into place once its size and checksum match the
published values. A ``NAME.ok`` sidecar records the verified hashes, so a re-run neither
re-hashes gigabytes nor touches the network.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import requests
import urllib3
from tqdm import tqdm

from pneumo import __version__
from pneumo.data.sources.checksums import (
    Digests,
    existing_ok,
    sidecar_path,
    verify,
    write_sidecar,
)
from pneumo.errors import ChecksumError, PneumoError

log = logging.getLogger(__name__)

TIMEOUT_S = (15.0, 60.0)  # (connect, read between bytes)
CHUNK = 1 << 20
_BACKOFF_S = 1.0  # first retry delay; doubles per retry, capped at _BACKOFF_MAX_S
_BACKOFF_MAX_S = 30.0
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Failures worth a retry; raw reads raise urllib3's own errors, not requests' wrappers.
_TRANSIENT = (requests.ConnectionError, requests.Timeout, urllib3.exceptions.HTTPError)


class _RetryableError(Exception):
    """A transient failure: wait and try again from the bytes already on disk."""


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def download(
    url: str,
    dest: Path,
    *,
    size: int | None,
    sha256: str | None,
    md5: str | None = None,
    progress: bool = True,
    retries: int = 5,
    session: requests.Session | None = None,
) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there; return ``dest``."""
    dest = Path(dest)
    expected = {"sha256": sha256.lower() if sha256 else None, "md5": md5.lower() if md5 else None}
    if dest.exists():
        if existing_ok(dest, size, expected):
            return dest
        log.warning("%s does not match its published size or checksum; downloading again", dest)
        dest.unlink()
        sidecar_path(dest).unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    http = session or requests.Session()
    if session is None:
        http.headers["User-Agent"] = f"pneumo/{__version__}"
    try:
        digests = _Transfer(http, url, dest, size, expected).run(progress, retries)
    finally:
        if session is None:
            http.close()
    part = part_path(dest)
    verify(part, dest.name, size, expected, digests)
    part.replace(dest)
    write_sidecar(dest, digests)
    return dest


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


class _Transfer:
    """Streams one URL into its .part file, resuming and retrying until the file is complete."""

    def __init__(
        self,
        http: requests.Session,
        url: str,
        dest: Path,
        size: int | None,
        expected: dict[str, str | None],
    ) -> None:
        self.http, self.url, self.name, self.size = http, url, dest.name, size
        self.part = part_path(dest)
        if size is not None and _size(self.part) > size:
            self.part.unlink()  # longer than the published file: cannot be a prefix of it
        self.digests = Digests(expected)
        if _size(self.part):
            self.digests.feed(self.part)  # resumed bytes must enter the digests too

    def run(self, progress: bool, retries: int) -> dict[str, str]:
        offset, failures = _size(self.part), 0
        bar = tqdm(total=self.size, initial=offset, desc=self.name, disable=not progress,
                   unit="B", unit_scale=True, file=sys.stderr, leave=False)  # fmt: skip
        with bar:
            while self.size is None or offset < self.size:
                try:
                    total = self._attempt(offset, bar)
                except _RetryableError as exc:
                    failures += 1
                    reason = exc.__cause__ or exc
                    if failures > retries:
                        raise PneumoError(
                            f"download of {self.url} failed after {retries} retries: {reason}",
                            hint="check the network and run the same command again; it resumes "
                            f"from the {_size(self.part)} bytes already in {self.part}",
                        ) from exc
                    delay = min(_BACKOFF_S * 2 ** (failures - 1), _BACKOFF_MAX_S)
                    log.warning("%s: %s; retrying in %.1f s", self.name, reason, delay)
                    time.sleep(delay)
                    offset = _size(self.part)
                    if offset == 0:
                        self.digests.reset()
                        bar.reset(total=bar.total)
                    continue
                offset = _size(self.part)
                if total is None or offset >= total:
                    break
        return self.digests.result()

    def _attempt(self, offset: int, bar: tqdm[Any]) -> int | None:
        """One request appending to the .part file; returns the server's total size if known."""
        # identity: a transparently gunzipped .tar.gz would neither match its checksum nor resume.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            with self.http.get(self.url, headers=headers, stream=True, timeout=TIMEOUT_S) as resp:
                total = self._check(resp, offset)
                if resp.status_code == 416:
                    return total
                if offset and resp.status_code != 206:
                    offset = 0  # 200 to a Range request: the whole file follows; start over
                    self.part.unlink(missing_ok=True)
                    self.digests.reset()
                    bar.reset(total=bar.total)
                if bar.total is None and total is not None:
                    bar.total = total
                    bar.refresh()
                with self.part.open("ab") as fh:
                    # read1 hands over what has arrived, so a drop loses nothing already received;
                    # no decoding: Range offsets count the bytes as served.
                    while chunk := resp.raw.read1(CHUNK, decode_content=False):
                        fh.write(chunk)
                        self.digests.update(chunk)
                        bar.update(len(chunk))
                    fh.flush()
                    os.fsync(fh.fileno())
        except _TRANSIENT as exc:
            raise _RetryableError(str(exc)) from exc
        if total is not None and _size(self.part) < total:
            raise _RetryableError("connection closed before the end of the file")
        return total

    def _check(self, resp: requests.Response, offset: int) -> int | None:
        """Raise for responses that cannot be used; return the whole file's size if stated."""
        status, content_range = resp.status_code, resp.headers.get("Content-Range", "")
        length = resp.headers.get("Content-Length", "")
        total = _range_total(content_range)
        if status == 416 and offset:
            if total != offset:  # our bytes do not fit the server's file: start over
                self.part.unlink()
                raise _RetryableError(f"server refused to resume at byte {offset}")
            return total  # the .part already holds the whole file
        if status in _RETRY_STATUS:
            raise _RetryableError(f"HTTP {status} from {self.url}")
        if status >= 400:
            raise PneumoError(
                f"HTTP {status} {resp.reason} from {self.url}",
                hint="the file may have moved; check the URL (or --mirror), "
                "or download it by hand into the download folder",
            )
        _refuse_web_page(resp, self.url, self.name, self.part.parent)
        if status == 206:
            if not content_range.startswith(f"bytes {offset}-"):
                self.part.unlink(missing_ok=True)
                raise _RetryableError(f"server resumed elsewhere than byte {offset}")
            total = total or (offset + int(length) if length.isdigit() else None)
        else:  # the whole file follows
            total = int(length) if length.isdigit() else None
        if total is not None and self.size not in (None, total):
            self.part.unlink(missing_ok=True)  # the server's file is not the published one
            raise ChecksumError(
                f"{self.name}: the server offers {total} bytes, the published size is {self.size}",
                hint=f"the file changed at its source ({self.url}); check the URL or mirror",
            )
        return total


def _refuse_web_page(resp: requests.Response, url: str, name: str, folder: Path) -> None:
    """Box and Mendeley answer a dead or rate-limited link with an HTML page and status 200."""
    ctype = resp.headers.get("Content-Type", "")
    if ctype.startswith("text/html") and not name.endswith((".html", ".htm")):
        raise PneumoError(
            f"{url} returned a web page instead of {name}",
            hint="the link may have moved or the host is rate-limiting; open it in a browser, "
            f"or download the file by hand to {folder / name}",
        )


def _range_total(content_range: str) -> int | None:
    """The full size from ``bytes A-B/TOTAL`` or ``bytes */TOTAL``."""
    match = re.search(r"/(\d+)\s*$", content_range)
    return int(match.group(1)) if match else None
