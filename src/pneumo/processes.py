"""Processes of this machine: whether one is still running (for work a killed process left)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """A process ``pid`` exists on this machine (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
