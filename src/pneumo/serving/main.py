"""`pneumo serve`: resolve and verify the model first (clear errors), then run Uvicorn."""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumo.errors import PneumoError
from pneumo.serving.logs import LOG_CONFIG, configure, event
from pneumo.settings import ServeSettings, Settings

if TYPE_CHECKING:
    from pneumo.monitoring.records import RecordStore


def _port(cfg: ServeSettings) -> int:
    """PNEUMO_SERVE_PORT; else ``$PORT``, the port serverless container platforms (Scaleway
    Serverless Containers, Cloud Run, Knative) give the container; else 8000."""
    given = os.environ.get("PORT")
    if "PNEUMO_SERVE_PORT" in os.environ or given is None:
        return cfg.serve_port
    if not given.isdigit() or not 0 < int(given) < 65536:
        raise PneumoError(f"PORT={given!r} is not a port number", hint="set PORT to 1-65535")
    return int(given)


def run_server(
    model: str | None = None,
    host: str | None = None,
    port: int | None = None,
    intro: str | None = None,
) -> None:
    import uvicorn

    from pneumo.serving.app import create_app
    from pneumo.serving.edge import guarded_protocol
    from pneumo.serving.source import make_source
    from pneumo.serving.state import load_current
    from pneumo.settings import get_settings

    configure()
    cfg = ServeSettings()
    settings = get_settings()
    source = make_source(model or cfg.serve_model, settings, cfg.cache_dir(settings.root))
    loaded = load_current(source, cfg)
    app = create_app(cfg, source, loaded, _stores(settings))
    host = host or cfg.serve_host
    port = _port(cfg) if port is None else port
    banner = intro or (
        f"serving {loaded.name} v{loaded.version} from {source.description}\n"
        f"  page     http://{host}:{port}/\n  API docs http://{host}:{port}/docs\n"
        f"  try      curl -F file=@xray.png http://{host}:{port}/v1/predict"
    )
    if intro or sys.stderr.isatty():  # for a person; a log collector gets JSON only
        print(banner, file=sys.stderr, flush=True)
    else:
        event("service_listening", url=f"http://{host}:{port}/", docs=cfg.serve_docs)
    # Uvicorn shuts down gracefully on SIGTERM, then raises the signal again once its own
    # handler is gone: this one makes that a clean exit (0), as after Ctrl-C.
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(
        app, host=host, port=port, log_config=LOG_CONFIG, access_log=False,
        timeout_graceful_shutdown=cfg.shutdown_grace_s, http=guarded_protocol(cfg.header_timeout_s),
        timeout_keep_alive=cfg.keepalive_s, limit_concurrency=cfg.max_connections,
    )  # fmt: skip


def _stores(settings: Settings) -> tuple[RecordStore, RecordStore] | None:
    from pneumo import paths, storage
    from pneumo.monitor_settings import MonitorSettings
    from pneumo.monitoring.records import RecordStore

    monitor = MonitorSettings()
    if not monitor.records:
        return None
    url = monitor.records_url or storage.join(settings.root, paths.RECORDS_DIR)
    journal = journal_folder(url, monitor.replica)
    records = RecordStore(url, monitor, settings, journal=journal)
    labels = RecordStore(url, monitor, settings, suffix=paths.LABEL_SUFFIX, journal=journal)
    event("records", folder=storage.join(url, monitor.replica), journal=str(journal),
          recovered=records.recovered + labels.recovered)  # fmt: skip
    return records, labels


def journal_folder(url: str, replica: str) -> Path:
    """Where a replica journals what it has not written yet: beside its segments when they are
    local, in the user's cache when they go to object storage."""
    from pneumo import storage
    from pneumo.settings import user_cache

    if not storage.is_remote(url):
        return Path(storage.strip_file_scheme(url)) / replica / ".journal"
    digest = hashlib.sha1(url.encode()).hexdigest()[:12]
    return user_cache() / "records-journal" / f"{replica}-{digest}"


def _stopped(signum: int, frame: Any) -> None:
    raise SystemExit(0)
