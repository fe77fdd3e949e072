"""Where a model's code came from: pneumo's version and, from a git checkout, the commit."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from pneumo import __version__


def code_version() -> dict[str, Any]:
    """pneumo's version and, when running from a git checkout, its commit."""
    here = Path(__file__).resolve().parent
    commit: str | None = None
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        commit = out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"pneumo": __version__, "git_commit": commit}
