"""`pneumo monitor`: the served models' records, read back and reported.

Every replica's records and labels under the records URL (local or ``s3://``) in a time range;
each model version seen is fetched from the registry (as the service fetches it) for its
drift reference and threshold. Writes ``report.html`` and ``monitor.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pneumo import __version__, paths, storage
from pneumo.errors import PneumoError
from pneumo.monitoring.baseline import DriftReference
from pneumo.monitoring.records import read_records
from pneumo.monitoring.timeline import Timeline, build_timeline
from pneumo.packaging.package import read_package
from pneumo.packaging.registry import ModelRegistry
from pneumo.reports.monitoring import page, summary, to_json
from pneumo.settings import ServeSettings, Settings, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorResult:
    records_url: str
    report: str
    json_path: str
    timeline: Timeline

    def summary(self) -> str:
        s = summary(self.timeline)
        q = s["quality"]
        return "\n".join([
            f"records:     {q['records']} from {len(q['replicas'])} replica(s) under "
            f"{self.records_url}",
            f"drift:       {s['drifted_windows']} of {len(s['windows'])} windows flagged "
            f"(alpha {s['alpha']:g})",
            f"labels:      {q['labels']} received, {q['labels_joined']} joined; "
            f"{len(s['performance'])} labelled windows",
            f"report:      {self.report}",
            f"json:        {self.json_path}",
        ])  # fmt: skip


def parse_time(text: str | None, what: str) -> float | None:
    """An ISO date or date-time (UTC unless it says otherwise) → epoch seconds."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        hint = "use ISO 8601, e.g. 2026-12-01 or 2026-12-01T08:00"
        raise PneumoError(f"{what} {text!r} is not a date or date-time", hint=hint) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _references(
    versions: list[str], name: str, settings: Settings
) -> tuple[dict[str, DriftReference | None], dict[str, float]]:
    refs: dict[str, DriftReference | None] = {}
    thresholds: dict[str, float] = {}
    reg = ModelRegistry(settings, name)
    cache = ServeSettings().cache_dir(settings.root)
    for version in versions:
        try:
            pkg = read_package(reg.download(version, cache))
        except Exception as exc:  # a version deleted since: reported without its tests
            log.warning("version %s of %s: %s; its windows are not tested", version, name,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)  # fmt: skip
            refs[version] = None
            continue
        refs[version] = pkg.reference.drift if pkg.reference is not None else None
        thresholds[version] = pkg.card.operating_threshold()
    return refs, thresholds


def monitor(
    records_url: str | None = None, settings: Settings | None = None, *, since: str | None = None,
    until: str | None = None, out: str | None = None, name: str = "pneumonia", window: int = 50,
    label_window: int = 50, alpha: float = 0.01,
) -> MonitorResult:  # fmt: skip
    settings = settings or get_settings()
    url = records_url or storage.join(settings.root, paths.RECORDS_DIR)
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    records = read_records(url, settings, start, end)
    labels = read_records(url, settings, start, end, suffix=paths.LABEL_SUFFIX)
    if records.empty:
        raise PneumoError(
            f"no prediction records under {url}"
            + (" in that time range" if since or until else ""),
            hint="serve a model (records are on by default; PNEUMO_MONITOR_RECORDS_URL says "
            "where) or point --records at where they are",
        )
    versions = sorted({str(v) for v in records["model_version"]}, key=lambda v: (len(v), v))
    refs, thresholds = _references(versions, name, settings)
    timeline = build_timeline(records, labels, refs, thresholds, window, label_window, alpha)
    folder = out or storage.join(settings.root, paths.MONITOR_REPORT_DIR)
    report = storage.join(folder, paths.REPORT_HTML)
    json_path = storage.join(folder, paths.MONITOR_JSON)
    storage.makedirs(folder, settings)
    storage.write_text(report, page(timeline, records, refs, url, __version__), settings)
    storage.write_text(json_path, to_json(timeline) + "\n", settings)
    return MonitorResult(url, report, json_path, timeline)
