"""Finding runs and their checkpoints on disk; copying a run to a fixed path for pipelines."""

from __future__ import annotations

from pneumo import paths, storage
from pneumo.errors import PneumoError
from pneumo.settings import Settings


def run_dir(ref: str, settings: Settings) -> str:
    """A run's folder from its id, its folder, or 'last' (the most recently written run)."""
    if ref == "last":
        runs = [
            storage.join(settings.runs, name) for name in storage.listdir(settings.runs, settings)
        ]
        runs = [r for r in runs if storage.exists(storage.join(r, paths.LAST), settings)]
        if not runs:
            raise PneumoError(
                f"no resumable run under {settings.runs}", hint="start one with `pneumo train`"
            )
        return max(
            runs, key=lambda r: storage.size_and_mtime(storage.join(r, paths.LAST), settings)[1]
        )
    for candidate in (ref, storage.join(settings.runs, ref)):
        if storage.exists(storage.join(candidate, paths.LAST), settings) or storage.exists(
            storage.join(candidate, paths.BEST), settings
        ):
            return storage.absolute(candidate)
    raise PneumoError(
        f"no run {ref!r} (looked in {settings.runs})",
        hint="give a run id from `pneumo train`'s output",
    )


EXPORTED = (paths.BEST, paths.HISTORY, paths.HISTORY_FIGURE)


def export_run(run_id: str, folder: str, dest: str, settings: Settings) -> None:
    """Copy a finished run's model and history to ``dest`` (a fixed path for pipelines), with
    ``run.json`` naming the run, so DVC can track outputs that do not depend on the run id."""
    for name in EXPORTED:
        source = storage.join(folder, name)
        storage.write_bytes(
            storage.join(dest, name), storage.read_bytes(source, settings), settings
        )
    record = {"run_id": run_id, "run_dir": folder}
    storage.write_json(storage.join(dest, paths.RUN_RECORD), record, settings, indent=None)


def checkpoint_of(ref: str, settings: Settings) -> tuple[str, str | None]:
    """(checkpoint URL, run folder or None) from a run id, a run folder, 'last' or a .pt file."""
    if ref.endswith(".pt"):
        if not storage.exists(ref, settings):
            raise PneumoError(f"checkpoint not found: {ref}")
        return storage.absolute(ref), None
    folder = run_dir(ref, settings)
    return storage.join(folder, paths.BEST), folder
