"""Two-process DistributedDataParallel training on CPU with gloo, launched by torchrun."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pneumo.models import checkpoint
from tests.conftest import tiny_prepared, torchrun_train


@pytest.mark.slow
def test_torchrun_two_processes_gloo(pneumo_root: Path) -> None:
    entry = tiny_prepared(patients=40)
    cmd = torchrun_train(entry.name)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = list((pneumo_root / "runs").iterdir())
    assert len(runs) == 1, "only rank 0 creates a run"
    best = checkpoint.load(str(runs[0] / "best.pt"))
    assert not any(k.startswith("module.") for k in best.weights)
    assert "run " in proc.stdout
