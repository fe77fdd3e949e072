"""Prometheus metrics, on a registry of the app's own (several apps may live in one process)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCORE_BUCKETS = tuple(i / 20 for i in range(1, 21))
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
OOD_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)


# the drift tests a reference built by this release runs (monitoring.detector)
DRIFT_TESTS = (
    "embedding_mmd", "score_ks", "mean_intensity_ks", "std_intensity_ks", "orig_width_ks",
    "orig_height_ks",
)  # fmt: skip


class Metrics:
    def __init__(self) -> None:
        # No `_created` series: a start timestamp per counter and histogram that Prometheus
        # does not need (it sees resets itself) and that doubles what a scrape carries.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "pneumo_http_requests", "HTTP requests by route and status.",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "pneumo_http_request_duration_seconds", "Request latency by route and status.",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.scores = Histogram(
            "pneumo_prediction_probability", "Predicted probability of pneumonia.",
            buckets=SCORE_BUCKETS, registry=r,
        )  # fmt: skip
        self.ood = Histogram(
            "pneumo_ood_score", "Out-of-distribution score of each scored image.",
            buckets=OOD_BUCKETS, registry=r,
        )  # fmt: skip
        self.refused = Counter(
            "pneumo_inputs_refused", "Uploads refused by the input policy, by reason.", ["reason"],
            registry=r,
        )  # fmt: skip
        self.predictions = Counter(
            "pneumo_predictions", "Predictions by decision.", ["label"], registry=r
        )
        self.batch_size = Histogram(
            "pneumo_inference_batch_size", "Images per ONNX Runtime call.",
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.inference = Histogram(
            "pneumo_inference_duration_seconds", "Time of one ONNX Runtime call.",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._monitoring(r)
        self.model_info = Gauge(
            "pneumo_model_info", "The model being served (value 1).", ["name", "version"],
            registry=r,
        )  # fmt: skip
        self.swaps = Counter("pneumo_model_swaps", "Models swapped in while serving.", registry=r)
        self.load_failures = Counter(
            "pneumo_model_load_failures", "Model versions refused (failed to load or verify).",
            registry=r,
        )  # fmt: skip

    def _monitoring(self, r: CollectorRegistry) -> None:
        """The monitoring's series: records, drift checks, delayed labels."""
        self.records = Counter(
            "pneumo_monitor_records", "Prediction records kept, and dropped (store unreachable).",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.segments = Counter(
            "pneumo_monitor_segments", "Record segments written, and failed writes.",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.drift_p = Gauge(
            "pneumo_drift_p_value", "p-value of the last drift check, by test (NaN: none yet).",
            ["test"], registry=r,
        )  # fmt: skip
        self.drift_statistic = Gauge(
            "pneumo_drift_statistic", "Statistic of the last drift check, by test.", ["test"],
            registry=r,
        )  # fmt: skip
        self.drift = Gauge(
            "pneumo_drift_detected", "1 when the last check flagged drift, by test.", ["test"],
            registry=r,
        )  # fmt: skip
        self.drift_checks = Counter(
            "pneumo_drift_checks", "Drift checks run on the window of recent images.", registry=r
        )
        for test in DRIFT_TESTS:
            for gauge in (self.drift_p, self.drift_statistic, self.drift):
                gauge.labels(test).set(float("nan"))
        self.feedback = Counter(
            "pneumo_feedback_labels", "Delayed labels received, by outcome.", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.labelled_auroc = Gauge(
            "pneumo_labelled_auroc", "AUROC over the window of labelled predictions (NaN: "
            "one class so far).", registry=r,
        )  # fmt: skip
        self.labelled_sensitivity = Gauge(
            "pneumo_labelled_sensitivity", "Sensitivity at the threshold, labelled window.",
            registry=r,
        )  # fmt: skip
        self.labelled_specificity = Gauge(
            "pneumo_labelled_specificity", "Specificity at the threshold, labelled window.",
            registry=r,
        )  # fmt: skip
        self.labelled = Gauge(
            "pneumo_labelled_images", "Labelled predictions in the window, by label.", ["label"],
            registry=r,
        )  # fmt: skip
        for gauge in (self.labelled_auroc, self.labelled_sensitivity, self.labelled_specificity):
            gauge.set(float("nan"))
        for label in ("positive", "negative"):
            self.labelled.labels(label).set(0)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)

    def serving(self, name: str, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name=name, version=version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
