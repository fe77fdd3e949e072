"""The decode budget: small files that claim huge images cost what the budget allows.

Measured on the service process itself (its peak resident set, ``VmHWM`` in /proc), with
sixteen hostile uploads at once: images whose header claims more pixels than a radiograph can
have are refused from the header; images that fit the pixel limit but decode to hundreds of MB
wait for each other instead of being decoded side by side.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import rgba_png
from tests.serving_support import Registered, post, running_service

pytestmark = pytest.mark.slow

PEAK_RSS_BOUND_MB = 1536  # the bound the README states for 16 concurrent hostile uploads


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def test_sixteen_hostile_uploads_stay_within_the_memory_bound(
    registered: Registered, tmp_path: Path
) -> None:
    claims_too_much = rgba_png(1, 83_886_338, rows=1)  # the BLP fuzz file's claim, as a PNG
    heavy = rgba_png(6000, 6000)  # 36 MP: within the pixel limit, ~500 MB to decode
    assert len(heavy) < 2**20
    good = Path(sorted(registered.test_images)[0]).read_bytes()
    # memory is measured here, not the heavy lane's pacing (benchmarks/hostile_load.py): unpaced
    env = {**registered.env, "PNEUMO_HEAVY_DECODE_SHARE": "1"}
    with running_service(env, tmp_path / "cwd", poll_seconds="0") as svc:
        pid = svc.process.pid
        before = _peak_rss_mb(pid)
        refused = post(svc.url, claims_too_much, "claims.png")
        assert refused.status_code == 422 and refused.json()["error"] == "image_too_large"
        assert "83,886,338" in refused.json()["detail"] or "MB" in refused.json()["detail"]
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda i: post(svc.url, heavy, f"h{i}.png", timeout=300),
                                    range(16)))  # fmt: skip
        # each was decoded and scored: a probability, or (a black image is no radiograph the
        # model knows) the out-of-distribution refusal, which needs the model's embedding
        outcomes = {(a.status_code, a.json().get("error")) for a in answers}
        assert outcomes <= {(200, None), (422, "out_of_distribution")}, outcomes
        peak = _peak_rss_mb(pid)
        assert post(svc.url, good).status_code == 200
    assert peak < PEAK_RSS_BOUND_MB, f"peak RSS {peak:.0f} MB (before the uploads {before:.0f})"
