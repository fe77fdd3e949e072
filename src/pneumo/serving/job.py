"""One image to score, as a route hands it to :mod:`pneumo.serving.judge`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    """Who asks (for the record and delayed labels), and how their image is named in errors."""

    label: str
    request_id: str = ""
    index: int = 0  # of the image in its request
    explain: bool = False  # with its activation map (the model must have them)
