"""`pneumo serve` runs numpy's BLAS on one thread (its pool would spin on ONNX Runtime's cores),
unless OPENBLAS_NUM_THREADS says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

PROBE = """
import sys, types
fake = types.ModuleType("pneumo.serving.main")
def run_server(**kw):
    import numpy  # noqa: F401  (loads its BLAS)
    import threadpoolctl
    print([i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"])
fake.run_server = run_server
sys.modules["pneumo.serving.main"] = fake  # the service itself is not started
from pneumo.cli import main
sys.argv = ["pneumo", "serve"]
main()
"""


@pytest.mark.parametrize(("given", "want"), [(None, "[1]"), ("2", "[2]")])
def test_serve_gives_blas_one_thread_unless_told(given: str | None, want: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["PYTHONPATH"] = str(REPO / "src")
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == want
