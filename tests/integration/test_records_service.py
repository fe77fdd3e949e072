"""The service records every scored image (issue 15, item 2): over /v1, its batch route and
/v2, with the caller's request id, the projected embedding and input statistics, and nothing
of the file itself; segments written while it runs and the rest on shutdown."""

from __future__ import annotations

import base64
import math
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from PIL import Image

from pneumo.monitoring.records import COLUMNS, read_records
from tests.browser import chromium_path, open_report
from tests.conftest import REPO, dicom_bytes
from tests.serving_support import Registered, running_service

pytestmark = pytest.mark.slow


def test_every_scored_image_is_recorded_without_its_pixels_or_name(
    registered: Registered, tmp_path: Path
) -> None:
    records = tmp_path / "records"
    files = sorted(registered.test_images)[:3]
    images = [Path(f).read_bytes() for f in files]
    settings = {
        "monitor_records_url": str(records), "monitor_replica": "replica-a",
        "monitor_segment_seconds": "0.3", "input_ood": "false", "poll_seconds": "0",
    }  # fmt: skip
    with running_service(registered.env, tmp_path / "cwd", **settings) as svc:
        for i, image in enumerate(images[:2]):
            r = requests.post(
                f"{svc.url}/v1/predict", files={"file": ("secret-name.png", image)},
                headers={"X-Request-ID": f"one-{i}"}, timeout=30,
            )  # fmt: skip
            assert r.status_code == 200, r.text
        batch = requests.post(
            f"{svc.url}/v1/predict/batch", headers={"X-Request-ID": "batch-1"}, timeout=30,
            files=[("files", (f"{i}.png", img)) for i, img in enumerate(images)],
        )  # fmt: skip
        assert batch.status_code == 200
        data = [base64.b64encode(images[2]).decode()]
        body = {"id": "v2-1", "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                          "data": data}]}  # fmt: skip
        v2 = requests.post(f"{svc.url}/v2/models/pneumonia/infer", json=body, timeout=30)
        assert v2.status_code == 200, v2.text
        dicom = dicom_bytes(np.asarray(Image.open(files[0]).convert("L"), np.uint16) * 200)
        r = requests.post(f"{svc.url}/v1/predict", files={"file": ("scan.dcm", dicom)},
                          headers={"X-Request-ID": "dicom-1"}, timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        refused = requests.post(
            f"{svc.url}/v1/predict", files={"file": ("x.png", b"not an image")}, timeout=30
        )
        assert refused.status_code == 415  # refused before scoring: no record
        deadline = time.monotonic() + 20
        while len(read_records(str(records))) < 7:  # written while it runs
            assert time.monotonic() < deadline, svc.logs()[-2000:]
            time.sleep(0.2)
        metrics = svc.metrics()
        last = requests.post(
            f"{svc.url}/v1/predict", files={"file": ("x.png", images[0])},
            headers={"X-Request-ID": "at-shutdown"}, timeout=30,
        )  # fmt: skip
        assert last.status_code == 200
    frame = read_records(str(records))  # the last one written on shutdown
    assert sorted(frame["request_id"]) == sorted(
        ["one-0", "one-1", "batch-1", "batch-1", "batch-1", "v2-1", "dicom-1", "at-shutdown"]
    )
    assert set(frame.columns) == {*COLUMNS, "replica"} and set(frame["replica"]) == {"replica-a"}
    text = frame.astype(str).to_string()
    assert "secret-name" not in text and ".png" not in text and ".dcm" not in text  # no names
    assert "Doe" not in text and "PID-0042" not in text  # no DICOM header values
    first = frame[frame["request_id"] == "one-0"].iloc[0]
    assert first["probability"] == pytest.approx(registered.test_images[files[0]], abs=1e-4)
    assert len(first["embedding"]) == 8 and first["src_mode"] and first["orig_width"] > 0
    assert 0 < first["mean_intensity"] < 255 and not first["refused"]
    assert set(frame["model_version"]) == {"1"}
    assert 'pneumo_monitor_records_total{outcome="kept"} 7.0' in metrics
    assert 'pneumo_monitor_segments_total{outcome="written"}' in metrics


def _drift_series(metrics: str, name: str) -> dict[str, float]:
    found = re.findall(rf'^{name}\{{test="([a-z_]+)"\}} (\S+)$', metrics, re.M)
    return {test: float(value) for test, value in found}


def test_drift_series_stay_quiet_on_the_models_own_kind_and_flip_on_another(
    registered: Registered, real_data: Path, tmp_path: Path, s3_endpoint: str
) -> None:
    """The tiny model learnt synthetic films: new ones from the same generator are its
    distribution, real adult and paediatric radiographs are another (scored anyway: the OOD
    refusal is off)."""
    from pneumo.config import SyntheticConfig
    from pneumo.data.sources import synthetic

    config = SyntheticConfig(
        patients=16, max_images_per_patient=1, image_size=64, prevalence=0.5, seed=7
    )
    synthetic.generate(str(tmp_path / "fresh"), config, progress=False)
    own = [p.read_bytes() for p in sorted((tmp_path / "fresh").rglob("*.png"))[:16]]
    assert len(own) == 16
    other = [p.read_bytes() for p in sorted((real_data / "nih-sample").rglob("*.png"))[:8]]
    other += [p.read_bytes() for p in sorted((real_data / "kermany-224").rglob("*.jpeg"))[:8]]
    records = tmp_path / "records"
    settings = {
        "monitor_records_url": str(records), "monitor_window": "16",
        "monitor_check_every": "16", "input_ood": "false", "poll_seconds": "0",
    }  # fmt: skip
    with running_service(registered.env, tmp_path / "cwd", **settings) as svc:
        before = _drift_series(svc.metrics(), "pneumo_drift_p_value")
        assert before and all(math.isnan(v) for v in before.values())  # exported, no check yet

        def send(images: list[bytes], checks: int) -> str:
            for image in images:
                r = requests.post(f"{svc.url}/v1/predict", files={"file": ("x.png", image)},
                                  timeout=30)  # fmt: skip
                assert r.status_code == 200, r.text
            deadline = time.monotonic() + 20
            while f"pneumo_drift_checks_total {checks}.0" not in (text := svc.metrics()):
                assert time.monotonic() < deadline, svc.logs()[-2000:]
                time.sleep(0.2)
            return text

        quiet = _drift_series(send(own, 1), "pneumo_drift_detected")
        loud = _drift_series(send(other, 2), "pneumo_drift_detected")
        p_values = _drift_series(svc.metrics(), "pneumo_drift_p_value")
    assert quiet["embedding_mmd"] == 0.0, quiet
    assert loud["embedding_mmd"] == 1.0 and p_values["embedding_mmd"] < 0.01, (loud, p_values)
    assert '"event": "drift_detected"' in svc.logs()
    _monitor_reports_the_same(registered, records, tmp_path, s3_endpoint)


def _monitor_reports_the_same(
    registered: Registered, records: Path, tmp_path: Path, s3_endpoint: str
) -> None:
    """`pneumo monitor` over those records, from the folder and from a bucket: the same two
    windows, the first quiet and the second flagged, in an HTML report and as JSON."""
    import json

    import s3fs
    from typer.testing import CliRunner

    from pneumo.cli import app
    from pneumo.settings import Settings
    from pneumo.stages.monitor import monitor
    from tests.serving_support import pytest_env

    local = monitor(str(records), Settings(root=str(registered.root)), window=16,
                    out=str(tmp_path / "report"))  # fmt: skip
    windows = local.timeline.windows
    assert list(windows["images"]) == [16, 16] and list(windows["version"]) == ["1", "1"]
    assert list(windows["drift_embedding_mmd"]) == [False, True]
    html = Path(local.report).read_text()
    assert "Drift" in html and "Data quality" in html and "No labels joined yet" in html
    if chromium_path() is not None:  # .ci/run installs it
        shot = REPO / "test-output" / "screenshots" / "monitoring-report.png"
        opened = open_report(Path(local.report), shot)
        assert opened["figures"] >= 3 and opened["decoded"] == opened["figures"], opened
        assert opened["outside_requests"] == 0 and opened["sections"] >= 4, opened
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    fs.mkdir("watch")
    fs.put(str(records), "watch/records", recursive=True)
    with pytest_env(**registered.env, PNEUMO_S3_ENDPOINT_URL=s3_endpoint):
        out = CliRunner().invoke(app, ["monitor", "--records", "s3://watch/records",
                                       "--window", "16", "--json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    document = json.loads(out.output)
    assert [w["drift_embedding_mmd"] for w in document["windows"]] == [False, True]
    assert document["quality"]["records"] == 32 and document["drifted_windows"] == 1


def test_delayed_labels_join_their_predictions_once_and_move_the_performance_series(
    registered: Registered, tmp_path: Path
) -> None:
    from pneumo import paths
    from pneumo.metrics.curves import roc_auc

    records = tmp_path / "records"
    files = sorted(registered.test_images)
    settings = {"monitor_records_url": str(records), "input_ood": "false", "poll_seconds": "0"}
    with running_service(registered.env, tmp_path / "cwd", **settings) as svc:
        scored: dict[tuple[str, int], float] = {}
        for i, name in enumerate(files[:6] * 2):
            image = {"file": ("x.png", Path(name).read_bytes())}
            r = requests.post(f"{svc.url}/v1/predict", headers={"X-Request-ID": f"p{i}"},
                              files=image, timeout=30)  # fmt: skip
            scored[(f"p{i}", 0)] = r.json()["probability"]
        batch = requests.post(
            f"{svc.url}/v1/predict/batch", headers={"X-Request-ID": "b"}, timeout=30,
            files=[("files", ("x.png", Path(f).read_bytes())) for f in files[:3]],
        ).json()  # fmt: skip
        scored.update({("b", p["index"]): p["probability"] for p in batch["predictions"]})
        threshold = batch["threshold"]
        labels = {key: i % 2 for i, key in enumerate(sorted(scored))}
        body = {"labels": [{"request_id": k[0], "index": k[1], "label": y}
                           for k, y in labels.items()]}  # fmt: skip
        body["labels"].append({"request_id": "ghost", "index": 0, "label": 1})
        first = requests.post(f"{svc.url}/v1/feedback", json=body, timeout=30)
        assert first.status_code == 200, first.text
        metrics = svc.metrics()
        again = requests.post(f"{svc.url}/v1/feedback", json=body, timeout=30)
        unchanged = svc.metrics()
        flipped, same = 1 - labels[("p0", 0)], labels[("p1", 0)]
        conflict = {"labels": [{"request_id": "p0", "index": 0, "label": flipped},
                               {"request_id": "p1", "index": 0, "label": same}]}  # fmt: skip
        refused = requests.post(f"{svc.url}/v1/feedback", json=conflict, timeout=30)
        twice = {"labels": [{"request_id": "ghost2", "label": 1},
                            {"request_id": "ghost2", "label": 0}]}  # fmt: skip
        torn = requests.post(f"{svc.url}/v1/feedback", json=twice, timeout=30)
        malformed = requests.post(
            f"{svc.url}/v1/feedback", json={"labels": [{"request_id": "p0", "label": 3}]},
            timeout=30,
        )  # fmt: skip
    y = [labels[k] for k in sorted(scored)]
    p = [scored[k] for k in sorted(scored)]
    answer = first.json()
    assert (answer["joined"], answer["repeated"], answer["unmatched"]) == (15, 0, 1)
    perf = answer["performance"]
    assert perf["images"] == 15 and (perf["positives"], perf["negatives"]) == (7, 8)
    assert perf["auroc"] == pytest.approx(roc_auc(y, p), abs=1e-9)
    called = [pi >= threshold for pi in p]
    sensitivity = sum(c for c, yi in zip(called, y, strict=True) if yi) / 7
    assert perf["sensitivity"] == pytest.approx(sensitivity)
    assert f"pneumo_labelled_auroc {perf['auroc']}" in metrics
    assert 'pneumo_labelled_images{label="positive"} 7.0' in metrics
    assert again.status_code == 200 and again.json()["repeated"] == 16
    assert again.json()["performance"] == perf  # a repeated call changes nothing
    keep = [line for line in unchanged.splitlines() if line.startswith("pneumo_labelled")]
    assert keep == [line for line in metrics.splitlines() if line.startswith("pneumo_labelled")]
    assert refused.status_code == 409 and "labels[0] (p0, image 0)" in refused.json()["detail"]
    assert "labels[1]" not in refused.json()["detail"]
    assert torn.status_code == 409 and "labels[1] (ghost2, image 0)" in torn.json()["detail"]
    assert malformed.status_code == 422
    assert malformed.json()["detail"].startswith("labels[0].label: not valid here")
    kept = read_records(str(records), suffix=paths.LABEL_SUFFIX)
    assert len(kept) == 16 and set(kept["request_id"]) == {*(k[0] for k in scored), "ghost"}
    ghost = kept[kept["request_id"] == "ghost"].iloc[0]
    assert pd.isna(ghost["model_version"]) and kept["model_version"].notna().sum() == 15


def test_records_buffered_when_the_service_is_killed_are_written_by_the_next_one(
    registered: Registered, tmp_path: Path
) -> None:
    records = tmp_path / "records"
    image = Path(sorted(registered.test_images)[0]).read_bytes()
    settings = {
        "monitor_records_url": str(records), "monitor_replica": "r",
        "monitor_segment_seconds": "3600", "input_ood": "false", "poll_seconds": "0",
    }  # fmt: skip
    with running_service(registered.env, tmp_path / "cwd", **settings) as svc:
        for i in range(4):
            r = requests.post(f"{svc.url}/v1/predict", files={"file": ("x.png", image)},
                              headers={"X-Request-ID": f"k{i}"}, timeout=30)  # fmt: skip
            assert r.status_code == 200
        svc.process.kill()  # SIGKILL: no shutdown, nothing flushed
        svc.process.wait()
    assert read_records(str(records)).empty  # nothing was written as a segment
    (journal,) = (records / "r" / ".journal").glob("r.records.parquet-*.jsonl")
    with journal.open("a") as fh:
        fh.write('{"time": 1.0, "model_vers')  # a line the kill cut short
    (records / "r" / ".20260101T000000.000000-dead.records.parquet.tmp-1").write_bytes(b"PAR1")
    with running_service(registered.env, tmp_path / "cwd2", **settings) as svc:
        assert '"recovered": 4' in svc.logs()
    frame = read_records(str(records))
    assert sorted(frame["request_id"]) == ["k0", "k1", "k2", "k3"]  # intact, readable
    assert not journal.exists()
