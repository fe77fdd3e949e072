"""`pneumo fetch` and `pneumo datasets`: get a dataset, register it, list what is registered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pneumo import storage
from pneumo.config import ExperimentConfig, load_config
from pneumo.data.sources import datasets, synthetic
from pneumo.data.sources.datasets import Dataset
from pneumo.data.sources.remote import fetch_remote
from pneumo.errors import PneumoError
from pneumo.settings import Settings, get_settings


@dataclass(frozen=True)
class Fetched:
    dataset: Dataset
    how: Literal["generated", "registered", "fetched"]
    images: int | None = None  # how many a generator wrote

    def summary(self) -> str:
        d = self.dataset
        if self.how == "generated":
            return f"synthetic dataset '{d.name}': {self.images} images at {d.location}"
        return f"{self.how} '{d.name}' ({d.layout} layout) at {d.location}"


@dataclass(frozen=True)
class Listing:
    current: str | None
    known: list[Dataset]

    def summary(self) -> str:
        if not self.known:
            return "no datasets yet: try `pneumo fetch synthetic`"
        return "\n".join(
            f"{'*' if d.name == self.current else ' '} {d.name:<24} {d.layout:<8} {d.source:<10} "
            f"{d.location}"
            for d in self.known
        )


def generate_synthetic(
    name: str, cfg: ExperimentConfig, settings: Settings, progress: bool
) -> Fetched:
    """Generate the seeded synthetic dataset ``name`` under the data location and register it."""
    dest = storage.join(settings.data, datasets.check_name(name))
    count = synthetic.generate(dest, cfg.synthetic, settings=settings, progress=progress)
    entry = datasets.register(dest, source="synthetic", name=name, settings=settings)
    return Fetched(entry, "generated", count)


def run_synthetic(
    name: str, config: str | None, overrides: list[str], *, progress: bool = True
) -> Fetched:
    return generate_synthetic(name, load_config(config, overrides), get_settings(), progress)


def run_local(path: str, name: str | None) -> Fetched:
    return Fetched(datasets.register(path, source="local", name=name), "registered")


def run_remote(
    source: Literal["nih", "kermany"], parts: str | None, mirror: str | None, name: str | None
) -> Fetched:
    """``parts`` (NIH only) numbers the image archives to take: "1,2" or "1-3"; None takes all."""
    chosen = parse_parts(parts)
    return Fetched(fetch_remote(source, parts=chosen, mirror=mirror, name=name), "fetched")


def parse_parts(text: str | None) -> list[int] | None:
    if not text:
        return None
    out: list[int] = []
    try:
        for piece in text.split(","):
            lo, _, hi = piece.partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise PneumoError(f"--parts {text!r} is not a list like '1,2' or '1-3'") from None
    return out


def listing() -> Listing:
    current, known = datasets.list_datasets()
    return Listing(current, known)
