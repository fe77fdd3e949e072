"""The heavy-decode lane hands back each job's result or error, one job at a time."""

from __future__ import annotations

import functools
import threading

import pytest

from pneumo.serving.heavy import HeavyLane


def test_results_and_errors_come_back_one_job_at_a_time() -> None:
    lane = HeavyLane(share=1.0)
    running: list[int] = []
    peak = [0]
    lock = threading.Lock()

    def job(i: int) -> int:
        with lock:
            running.append(i)
            peak[0] = max(peak[0], len(running))
        with lock:
            running.remove(i)
        if i == 3:
            raise ValueError("a broken image")
        return i * i

    futures = [lane.submit(functools.partial(job, i)) for i in range(6)]
    assert [f.result() for f in futures if f is not futures[3]] == [0, 1, 4, 16, 25]
    with pytest.raises(ValueError, match="a broken image"):
        futures[3].result()
    assert peak[0] == 1
    lane.shutdown()
