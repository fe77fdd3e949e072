"""A local journal of the records a store holds in memory, so a killed service loses none.

Each record buffered is appended to the process's journal file (a JSON line, flushed to the
operating system at once: it survives the process being killed, ``kill -9`` included). Once a
segment is written, the journal is rewritten with what is still buffered. The next store to
start on the same journal folder finds the journals of processes that are gone and writes
their records as segments before it records anything itself; a line cut short by the kill is
skipped.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from pneumo.processes import pid_alive


class Journal:
    def __init__(self, folder: Path, stem: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.stem = folder, stem
        self.path = folder / f"{stem}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._fh = self.path.open("a", encoding="utf-8")

    def append(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()

    def rewrite(self, rows: list[dict[str, Any]]) -> None:
        """The journal holds ``rows`` only (what is still buffered)."""
        self._fh.close()
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(self.path)
        self._fh = self.path.open("a", encoding="utf-8")

    def close(self) -> None:
        self._fh.close()
        if self.path.stat().st_size == 0:
            self.path.unlink(missing_ok=True)

    def orphans(self) -> list[Path]:
        """Journals of this stem left by processes that are gone."""
        found = []
        for path in sorted(self.folder.glob(f"{self.stem}-*-*.jsonl")):
            pid = path.name.removeprefix(f"{self.stem}-").split("-", 1)[0]
            if path != self.path and pid.isdigit() and not pid_alive(int(pid)):
                found.append(path)
        return found


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The rows of a journal; a line cut short (the process killed mid-write) is skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
