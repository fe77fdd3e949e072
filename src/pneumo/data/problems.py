"""Data problems found while preparing: each names the file (or label row) and the reason."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    file: str  # the image's URL, or "label-file:line"
    reason: str  # short category, e.g. "missing file", "truncated or corrupt image"
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


def to_csv(problems: list[Problem]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["file", "reason", "detail"])
    for p in problems:
        writer.writerow([p.file, p.reason, p.detail])
    return out.getvalue()


def summary(problems: list[Problem], examples: int = 20) -> dict[str, Any]:
    counts = Counter(p.reason for p in problems)
    return {
        "total": len(problems),
        "by_reason": dict(counts.most_common()),
        "examples": [
            {"file": p.file, "reason": p.reason, "detail": p.detail} for p in problems[:examples]
        ],
    }
