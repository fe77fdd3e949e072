"""Structured JSON logs: one line per request and per model event.

Every line is JSON, warnings of libraries included (pydicom's, Pillow's and Python's own
``warnings``, captured by :func:`configure`). Nothing from the request body goes in: no image
bytes, no file names (they can carry a patient's name), no DICOM header values. A request is
identified by the caller's well-formed ``X-Request-ID`` or else a random id, returned in that
header. :class:`JsonFormatter` also serves the CLI's ``--log-json``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

log = logging.getLogger("pneumo.serve")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        else:
            doc["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            doc["exception"] = record.exc_info[0].__name__
            doc["traceback"] = self.formatException(record.exc_info)  # one JSON string
        return json.dumps(doc, default=str)


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    log.log(level, name, extra={"fields": {"event": name, **fields}})


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "pneumo.serving.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    # every other logger (pydicom, PIL, py.warnings: Python warnings, captured) goes through
    # the root logger, so that every line on stderr is JSON
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "pneumo": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def configure() -> None:
    """JSON logging for the service, Python warnings captured into it."""
    import logging.config

    logging.config.dictConfig(LOG_CONFIG)
    logging.captureWarnings(True)
