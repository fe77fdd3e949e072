"""Every artifact name pneumo writes, defined once.

Locations (the root, the prepared and runs folders) come from :class:`pneumo.settings.Settings`;
what lies inside them is named here, so a reader finds each file's one definition and a rename
cannot miss a place.
"""

from __future__ import annotations

# Below $PNEUMO_ROOT (each location can be moved by its own setting; see pneumo.settings).
DATA_DIR = "data"
PREPARED_DIR = "prepared"
RUNS_DIR = "runs"
DOWNLOADS_DIR = "downloads"
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS_DIR = "mlartifacts"
SERVING_CACHE_DIR = "serving-cache"
REPORTS_DIR = "reports"  # comparison reports; `pneumo report` writes latest/ by default
DEMO_DIR = "demo"  # which run `pneumo demo` trained for each dataset and config
PREDICTIONS_DIR = "predictions"  # `pneumo predict`'s default table
EVALUATIONS_DIR = "evaluations"  # external evaluations of registered versions and packages
TUNING_DIR = "tuning"  # `pneumo tune`: the study database and one folder per study
RECORDS_DIR = "monitoring/records"  # the service's prediction records, a folder per replica
RECORD_SUFFIX = ".records.parquet"  # one segment of records
LABEL_SUFFIX = ".labels.parquet"  # one segment of delayed labels (POST /v1/feedback)
MONITOR_REPORT_DIR = "monitoring/report"  # `pneumo monitor`'s default output
MONITOR_JSON = "monitor.json"
OPTUNA_DB = "optuna.db"
# Under ~/.cache/pneumo when the root is object storage (SQLite, downloads and models need disk).
USER_CACHE = (".cache", "pneumo")
USER_MODELS_DIR = "models"
USER_SHARDS_DIR = "shards"  # shards streamed from object storage, a few at a time

# Under $PNEUMO_DATA_URL: the list of registered datasets.
DATASETS = "datasets.json"

# Under $PNEUMO_PREPARED_URL/<dataset>/ (see pneumo.data.preparation).
MANIFEST = "manifest.parquet"
DATA_CARD = "data_card.json"
PROBLEMS = "problems.csv"
CONFIG = "config.yaml"  # the resolved experiment config, beside a prepared dataset or a run
PREPARE_STATE = "prepare.json"  # written last: its presence means "prepared"
CACHE = "cache"
CACHE_SPEC = "spec.json"
EDA_REPORT = "eda.html"

# Under $PNEUMO_RUNS_URL/<run id>/ (see pneumo.training.fit).
BEST = "best.pt"
LAST = "last.pt"
HISTORY = "history.json"
HISTORY_FIGURE = "history.png"
MODEL_DIR = "model"  # the model package `register` writes
MODEL_INT8_DIR = "model-int8"  # the int8 variant `optimize` writes
RUN_RECORD = "run.json"  # which run a fixed-path export came from
REGISTERED = "registered.json"  # which version a package became

# In an evaluation folder, eval-<split>/ (see pneumo.reports.evaluation).
METRICS = "metrics.json"
HEADLINE = "headline.json"  # the few figures a pipeline compares (DVC's metric)
ROC_POINTS = "roc.json"  # the ROC curve as points (DVC's plot)
REPORT_MD = "report.md"
PREDICTIONS = "predictions.parquet"
ROC_FIGURE = "roc.png"
PR_FIGURE = "pr.png"
RELIABILITY_FIGURE = "reliability.png"
CONFUSION_FIGURE = "confusion.png"
ERRORS_FIGURE = "errors.png"  # the most confident errors, with their activation maps

# In a model package (see pneumo.packaging.package).
MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
CARD_PAGE = "card.html"
VERIFICATION_FILE = "verification.npz"
TRAINING_IMAGES = "training_images.json"  # hashes of the train and val images (optional)
REFERENCE_FILE = "reference.npz"  # the out-of-distribution reference (optional)

# `pneumo predict` (see pneumo.stages.predict): the default table and, in its .partial folder
# while it runs, which model the rows come from.
PREDICTIONS_TABLE = "latest.parquet"
PARTIAL_MODEL = "model.json"

# In a comparison folder (see pneumo.reports.comparison).
REPORT_HTML = "report.html"
CURVES_FIGURE = "curves.png"

# In a study's folder (see pneumo.stages.tune): the best trial's whole config, every trial.
BEST_CONFIG = "best.yaml"
TRIALS_TABLE = "trials.csv"

# MLflow run artifacts: the checkpoint's folder and each registration's package folder.
ARTIFACT_MODEL_DIR = "model"
ARTIFACT_PACKAGES_DIR = "packages"


def evaluation_dir(split: str) -> str:
    """The folder (in a run, and among its MLflow artifacts) of an evaluation on ``split``."""
    return f"eval-{split}"


def external_dir(label: str) -> str:
    """The folder (in a run or under ``evaluations/<model>/``, and among the run's MLflow
    artifacts) of an external evaluation, e.g. ``external-kermany-test``."""
    return f"external-{label}"


def overlay_name(file: str) -> str:
    """The activation-map overlay `pneumo predict --explain` writes for ``file`` (its name, made
    unique by a digest of its whole path: two folders may hold the same name)."""
    import hashlib

    stem = file.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or "image"
    digest = hashlib.sha256(file.encode()).hexdigest()[:8]
    return f"{stem}-{digest}.png"
