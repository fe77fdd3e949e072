"""``POST /v1/feedback``: delayed labels for predictions the service made (issue 15, item 4).

Idempotent: a label already given for an image changes nothing when given again; a different
label for it is a 409 and nothing of that call is applied. Labels this replica cannot join
(another replica's request, or older than its book) are kept for ``pneumo monitor``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from pneumo.monitoring.ground_truth import Performance
from pneumo.monitoring.records import LabelRecord
from pneumo.serving.api_errors import ApiError
from pneumo.serving.routes import ERRORS, Protected, service
from pneumo.serving.state import ServiceState

router = APIRouter(tags=["monitoring"])
MAX_LABELS = 1000


class LabelIn(BaseModel):
    request_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    index: int = Field(0, ge=0, description="The image's place in its request (0: the only).")
    label: int = Field(ge=0, le=1, description="1: pneumonia, 0: not.")


class FeedbackIn(BaseModel):
    labels: list[LabelIn] = Field(min_length=1, max_length=MAX_LABELS)


class LabelledPerformance(BaseModel):
    version: str
    images: int = Field(description="Labelled predictions of this version in the window.")
    positives: int
    negatives: int
    auroc: float | None
    sensitivity: float | None
    specificity: float | None


class FeedbackOut(BaseModel):
    joined: int = Field(description="Labels joined to a prediction of this replica.")
    repeated: int = Field(description="Labels given before (nothing changed).")
    unmatched: int = Field(description="Labels for predictions this replica did not make; kept.")
    performance: LabelledPerformance


def _export(state: ServiceState, perf: Performance) -> None:
    m = state.metrics
    for gauge, value in (
        (m.labelled_auroc, perf.auroc), (m.labelled_sensitivity, perf.sensitivity),
        (m.labelled_specificity, perf.specificity),
    ):  # fmt: skip
        gauge.set(float("nan") if value is None else value)
    m.labelled.labels("positive").set(perf.positives)
    m.labelled.labels("negative").set(perf.negatives)


@router.post("/v1/feedback", response_model=FeedbackOut, responses=ERRORS)
async def feedback(request: Request, _: Protected, body: FeedbackIn) -> FeedbackOut:
    """True labels for earlier predictions, by request id (and index in a batch)."""
    state = service(request)
    book = state.book
    keys = [((item.request_id, item.index), item.label) for item in body.labels]
    first: dict[tuple[str, int], int] = {}
    conflicts = []
    for i, (key, label) in enumerate(keys):  # against earlier calls, and within this one
        if book.outcome(key, label) == "conflict" or first.setdefault(key, label) != label:
            conflicts.append(i)
    if conflicts:
        named = ", ".join(
            f"labels[{i}] ({keys[i][0][0]}, image {keys[i][0][1]})" for i in conflicts
        )
        raise ApiError(409, "conflict", f"{named}: labelled differently before; a label is "
                       "given once (nothing of this call was applied)")  # fmt: skip
    counts = {"joined": 0, "repeated": 0, "unmatched": 0, "conflict": 0}
    for key, label in keys:
        outcome = book.label(key, label)
        counts[outcome] += 1
        state.metrics.feedback.labels(outcome).inc()
        if outcome != "repeated" and state.labels is not None:
            found = book.prediction(key)
            state.labels.add(LabelRecord(
                time.time(), key[0], key[1], label, found.version if found else None,
                found.probability if found else None,
            ))  # fmt: skip
    model = state.model
    perf = book.performance(model.version, model.threshold)
    _export(state, perf)
    request.state.log = {"labels": len(keys), **{k: v for k, v in counts.items() if v}}
    return FeedbackOut(
        joined=counts["joined"], repeated=counts["repeated"], unmatched=counts["unmatched"],
        performance=LabelledPerformance(**perf.__dict__),
    )  # fmt: skip
