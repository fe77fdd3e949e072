"""The list of datasets pneumo knows, kept as one JSON file under the data location.

`pneumo fetch` adds entries (``fetch local`` registers a folder without copying it); `prepare`
and `eda` take a dataset name, a path, or nothing (the most recently fetched dataset).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pneumo import paths, storage
from pneumo.data.sources import layout
from pneumo.errors import DataError
from pneumo.settings import Settings, get_settings

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Dataset:
    name: str
    location: str  # folder URL, or the label-file URL for a metadata-only NIH dataset
    layout: layout.LayoutName
    source: str  # "local", "nih", "kermany" or "synthetic"
    registered_at: str = ""


def _registry_url(settings: Settings) -> str:
    return storage.join(settings.data, paths.DATASETS)


def _load(settings: Settings) -> dict[str, object]:
    url = _registry_url(settings)
    if not storage.exists(url, settings):
        return {"current": None, "datasets": {}}
    data: dict[str, object] = json.loads(storage.read_text(url, settings))
    return data


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise DataError(
            f"invalid dataset name {name!r}",
            hint="use letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    return name


def default_name(location: str) -> str:
    """A dataset name from its folder or file name ("nih-sample", "Data_Entry_2017_v2020")."""
    base = storage.name_of(location)
    for suffix in (".gz", ".csv"):
        base = base.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "dataset"


def register(
    location: str, source: str, name: str | None = None, settings: Settings | None = None
) -> Dataset:
    """Detect the layout at ``location`` and record it under ``name`` as the current dataset."""
    settings = settings or get_settings()
    location = storage.absolute(location)
    detected = layout.detect(location, settings)
    entry = Dataset(
        name=check_name(name or default_name(location)),
        location=location,
        layout=detected.name,
        source=source,
        registered_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    data = _load(settings)
    datasets = dict(data.get("datasets") or {})  # type: ignore[call-overload]
    datasets[entry.name] = asdict(entry)
    storage.makedirs(settings.data, settings)
    storage.write_text(
        _registry_url(settings),
        json.dumps({"current": entry.name, "datasets": datasets}, indent=2),
        settings,
    )
    return entry


def list_datasets(settings: Settings | None = None) -> tuple[str | None, list[Dataset]]:
    settings = settings or get_settings()
    data = _load(settings)
    datasets = data.get("datasets") or {}
    assert isinstance(datasets, dict)
    current = data.get("current")
    return (current if isinstance(current, str) else None), [
        Dataset(**v) for _, v in sorted(datasets.items())
    ]


def resolve(ref: str | None, settings: Settings | None = None) -> Dataset:
    """A registered dataset by name, a path (registered on the fly), or the current one."""
    settings = settings or get_settings()
    current, known = list_datasets(settings)
    by_name = {d.name: d for d in known}
    if ref is None:
        if current is None or current not in by_name:
            raise DataError(
                "no dataset given and none fetched yet",
                hint="run `pneumo fetch synthetic` or `pneumo fetch local PATH` first, "
                "or pass a dataset name or path",
            )
        return by_name[current]
    if ref in by_name:
        return by_name[ref]
    if ("/" in ref or "://" in ref or ref.startswith(".")) and storage.exists(ref, settings):
        return register(ref, source="local", settings=settings)
    names = ", ".join(sorted(by_name)) or "none"
    raise DataError(
        f"unknown dataset {ref!r} (registered: {names})",
        hint="give a registered name or a path; `pneumo datasets` lists what is registered",
    )
