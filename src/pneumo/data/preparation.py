"""`pneumo prepare`: label table + split + image cache + manifest + data card, idempotently.

Outputs, under ``{settings.prepared}/{dataset}/``::

    manifest.parquet   one row per usable image (see pneumo.data.schema)
    cache/             uint8 shards (images mode only; see pneumo.data.cache)
    data_card.json     counts per split, label, sex, view, age band; patients per split
    problems.csv       every file or label row left out, with the reason
    config.yaml        the resolved experiment config
    prepare.json       the inputs' fingerprint; written last, so its presence means "complete"
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pneumo import paths, storage
from pneumo.config import ExperimentConfig, dump_config
from pneumo.data import datacard, problems, schema
from pneumo.data.cache_build import build_cache, join_cache, keep_twins_together
from pneumo.data.inventory import Inventory, take_inventory
from pneumo.data.prepared import prepared_folder
from pneumo.data.problems import Problem
from pneumo.data.sources.datasets import Dataset
from pneumo.data.sources.layout import detect
from pneumo.data.split import check_no_patient_overlap, grouped_split, undersample
from pneumo.errors import DataError
from pneumo.preprocess import ImageSpec
from pneumo.settings import Settings, get_settings

log = logging.getLogger(__name__)
FORMAT_VERSION = 2  # 2: Kermany patients parsed from file names; twins kept in one split
COLUMNS = [
    schema.IMAGE_ID, schema.PATH, schema.PATIENT_ID, schema.FOLLOW_UP, schema.AGE, schema.SEX,
    schema.VIEW, schema.ORIG_WIDTH, schema.ORIG_HEIGHT, *schema.FINDINGS, schema.LABEL,
    schema.SPLIT, schema.SHARD, schema.SHARD_INDEX, schema.CONTENT_HASH, schema.PERCEPTUAL_HASH,
    schema.SRC_MODE, schema.MEAN_INTENSITY, schema.STD_INTENSITY,
]  # fmt: skip
IMAGE_COLUMNS = (schema.PATH, schema.SHARD, schema.SHARD_INDEX, schema.CONTENT_HASH,
                 schema.PERCEPTUAL_HASH, schema.SRC_MODE, schema.MEAN_INTENSITY,
                 schema.STD_INTENSITY)  # fmt: skip
METADATA_COLUMNS = [c for c in COLUMNS if c not in IMAGE_COLUMNS]


@dataclass(frozen=True)
class PrepareResult:
    out: str
    card: dict[str, Any]
    up_to_date: bool

    @property
    def manifest(self) -> str:
        return storage.join(self.out, paths.MANIFEST)

    @property
    def data_card(self) -> str:
        return storage.join(self.out, paths.DATA_CARD)


def _state_key(inv: Inventory, config: ExperimentConfig) -> str:
    payload = {
        "format": FORMAT_VERSION,
        "inputs": inv.fingerprint,
        "prepare": config.prepare.model_dump(mode="json"),
        "split": config.split.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _assign_splits(
    inv: Inventory, cfg: ExperimentConfig
) -> tuple[pd.DataFrame, str, list[Problem]]:
    frame, split_cfg = inv.frame, cfg.split
    val, test = split_cfg.val_fraction, split_cfg.test_fraction
    unit = "patient-grouped" if inv.patient_grouped else "image-level (no patient ids)"
    official = inv.official if split_cfg.use_official else None
    if official is None or not (official == "test").any():
        split = grouped_split(
            frame, {"train": 1 - val - test, "val": val, "test": test}, split_cfg.seed
        )
        return (
            frame.assign(**{schema.SPLIT: split}),
            f"{unit} stratified, seed {split_cfg.seed}",
            [],
        )
    lost = official.isna()
    left_out = [
        Problem(
            str(i), "not in the official split lists", "in neither train_val_list nor test_list"
        )
        for i in frame.loc[lost, schema.IMAGE_ID]
    ]
    frame, official = frame[~lost], official[~lost]
    pool = official == "train_val"
    share = val / (1 - test) if test < 1 else 0.0
    inner = grouped_split(frame[pool], {"train": 1 - share, "val": share}, split_cfg.seed)
    split = pd.Series("test", index=frame.index, dtype="object")
    split.loc[inner.index] = inner
    method = f"official test list; train/val {unit} stratified from the rest, seed {split_cfg.seed}"
    return frame.assign(**{schema.SPLIT: split}), method, left_out


def prepare(
    dataset: Dataset, config: ExperimentConfig, settings: Settings | None = None,
    progress: bool = True,
) -> PrepareResult:  # fmt: skip
    """Prepare ``dataset``; a re-run with unchanged inputs and config does nothing."""
    settings = settings or get_settings()
    out = prepared_folder(dataset, settings)
    layout = detect(dataset.location, settings)
    inv = take_inventory(layout, config.prepare.metadata_only, settings)
    key = _state_key(inv, config)
    state_url = storage.join(out, paths.PREPARE_STATE)
    card_url = storage.join(out, paths.DATA_CARD)
    done = storage.exists(state_url, settings) and storage.exists(card_url, settings)
    if done and storage.read_json(state_url, settings).get("key") == key:
        return PrepareResult(out, storage.read_json(card_url, settings), True)
    if inv.frame.empty:
        raise DataError(f"dataset {dataset.name} ({dataset.location}) has no usable rows",
                        hint="see the problems listed above")  # fmt: skip

    frame, method, found = _assign_splits(inv, config)
    all_problems = [*inv.problems, *found]
    check_no_patient_overlap(frame)
    before = len(frame)
    if config.prepare.undersample:
        frame = undersample(frame, config.split.seed)
    undersampled = before - len(frame)
    mode = "images" if inv.has_images else "metadata-only"
    twins = None
    if inv.has_images:
        spec = ImageSpec(
            config.prepare.image_size, config.prepare.resize, config.prepare.max_pixels
        )
        cache_url = storage.join(out, paths.CACHE)
        results = build_cache(frame, cache_url, spec, config.prepare.shard_size, settings, progress)
        frame, bad = join_cache(frame, results)
        all_problems.extend(bad)
        shard_size = config.prepare.shard_size
        frame, twins = keep_twins_together(frame, cache_url, spec, shard_size, settings)
    frame = frame.reindex(columns=COLUMNS if inv.has_images else METADATA_COLUMNS)
    frame = frame.sort_values([schema.SPLIT, schema.IMAGE_ID], kind="stable").reset_index(drop=True)

    storage.makedirs(out, settings)
    problems_url = storage.join(out, paths.PROBLEMS)
    storage.write_text(problems_url, problems.to_csv(all_problems), settings)
    if config.prepare.strict and all_problems:
        listing = "\n".join(f"  {p}" for p in all_problems[:20])
        raise DataError(
            f"{len(all_problems)} data problem(s) in {dataset.name} (strict mode):\n{listing}",
            hint=f"fix them, or drop --strict to quarantine them; all are in {problems_url}",
        )
    storage.write_table(storage.join(out, paths.MANIFEST), frame, settings)
    data_card = datacard.build_card(
        frame, dataset=dataset.__dict__, mode=mode, split_method=method,
        patient_grouped=inv.patient_grouped, problems=problems.summary(all_problems),
        notes=inv.notes, config=config.model_dump(mode="json"), listed=inv.listed,
        undersampled=undersampled, near_duplicates=None if twins is None else twins.report(),
    )  # fmt: skip
    storage.write_json(card_url, data_card, settings)
    storage.write_text(storage.join(out, paths.CONFIG), dump_config(config), settings)
    state = {"key": key, "manifest_hash": data_card["manifest_hash"]}
    storage.write_json(state_url, state, settings, indent=None)  # last: marks the run complete
    return PrepareResult(out, data_card, False)
