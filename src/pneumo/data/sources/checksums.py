"""Is a downloaded file the published one? Its size and checksums, and the ``.ok`` sidecar.

A verified file gets a ``NAME.ok`` sidecar recording its hashes with the file's size and
modification time, so a re-run trusts an unchanged file without hashing gigabytes again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from pneumo.errors import ChecksumError

log = logging.getLogger(__name__)

CHUNK = 1 << 20


def sidecar_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".ok")


def verified_sha256(dest: Path) -> str | None:
    """The SHA-256 recorded when ``dest`` was last verified, if the file is unchanged since."""
    record = read_sidecar(dest)
    return record.get("sha256") if record else None


class Digests:
    """Running SHA-256 (always: it keys the sidecar and markers) and MD5 (when published)."""

    def __init__(self, expected: dict[str, str | None]) -> None:
        self.names = ["sha256", "md5"] if expected["md5"] else ["sha256"]
        self.reset()

    def reset(self) -> None:
        self.hashers = [hashlib.new(n, usedforsecurity=False) for n in self.names]

    def update(self, block: bytes) -> None:
        for h in self.hashers:
            h.update(block)

    def feed(self, path: Path) -> Digests:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                self.update(block)
        return self

    def result(self) -> dict[str, str]:
        return {n: h.hexdigest() for n, h in zip(self.names, self.hashers, strict=True)}


def verify(
    path: Path,
    name: str,
    size: int | None,
    expected: dict[str, str | None],
    digests: dict[str, str],
) -> None:
    """Raise ChecksumError (deleting ``path``) unless it matches every published value."""
    actual_size = path.stat().st_size
    problems: list[str] = []
    if size is not None and actual_size != size:
        problems.append(f"size: expected {size} bytes, got {actual_size}")
    for algo, want in expected.items():
        if want and digests.get(algo) != want:
            problems.append(f"{algo}: expected {want}, got {digests.get(algo)}")
    if problems:
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"{name} does not match its published values ({'; '.join(problems)})",
            hint="the partial download was deleted; run the command again to download it anew. "
            "If it fails again the file changed at its source: check the URL or mirror",
        )
    if size is None and not any(expected.values()):
        log.warning("%s: no published size or checksum, so it could not be verified", name)


def existing_ok(dest: Path, size: int | None, expected: dict[str, str | None]) -> bool:
    """Whether ``dest`` matches; hashes it only when no valid sidecar vouches for it."""
    if size is not None and dest.stat().st_size != size:
        return False
    record = read_sidecar(dest)
    if record is None or any(want and record.get(a) is None for a, want in expected.items()):
        digests = Digests(expected).feed(dest).result()
        if any(want and digests.get(a) != want for a, want in expected.items()):
            return False
        write_sidecar(dest, digests)
        return True
    return all(not want or record.get(a) == want for a, want in expected.items())


def read_sidecar(dest: Path) -> dict[str, str] | None:
    """The sidecar's digests, or None if it is missing, unreadable or older than ``dest``."""
    try:
        record = json.loads(sidecar_path(dest).read_text())
        st = dest.stat()
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if record.get("size") != st.st_size or record.get("mtime_ns") != st.st_mtime_ns:
        return None
    return {k: v for k, v in record.items() if k in ("sha256", "md5") and isinstance(v, str)}


def write_sidecar(dest: Path, digests: dict[str, str]) -> None:
    st = dest.stat()
    record = {**digests, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = sidecar_path(dest).with_suffix(".ok.tmp")
    tmp.write_text(json.dumps(record) + "\n")
    tmp.replace(sidecar_path(dest))
