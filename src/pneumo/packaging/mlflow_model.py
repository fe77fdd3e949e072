"""What makes a model package an MLflow model: ``MLmodel`` and its companions.

Each registered version's folder is both a pneumo package (read by `pneumo serve`) and an MLflow
model with two flavours:

- ``onnx``: ``model.onnx`` itself (``mlflow.onnx.load_model``);
- ``python_function``: loaded by :mod:`pneumo.serving.pyfunc` from the folder (``data: .``),
  so ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` score encoded images with the
  card's preprocessing and threshold, torch-free.

Written by MLflow's own ``mlflow.pyfunc.save_model`` (signature, input example, metadata,
environment files), then given the ``onnx`` flavour and pointed at the package's files; the card,
``card.html`` and ``verification.npz`` sit beside ``MLmodel`` as the model's artifacts.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any, Final

import numpy as np

from pneumo import __version__
from pneumo.packaging.modelcard import FORMAT, ModelCard
from pneumo.paths import MODEL_FILE

LOADER: Final = "pneumo.serving.pyfunc"
MLMODEL: Final = "MLmodel"
PROVIDERS: Final = ("CUDAExecutionProvider", "CPUExecutionProvider")
OUTPUT_TYPES: Final = (
    ("probability", "double"), ("label", "string"), ("positive", "boolean"),
    ("threshold", "double"), ("ood_score", "double"), ("ood_threshold", "double"),
)  # fmt: skip


def signature() -> Any:
    """The pyfunc's signature: encoded image bytes in, one row of scores per image out."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    outputs = Schema([ColSpec(kind, name) for name, kind in OUTPUT_TYPES])
    return ModelSignature(inputs=Schema([ColSpec("binary", "image")]), outputs=outputs)


def png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def mlflow_files(
    card: ModelCard, example: np.ndarray, run_id: str, artifact_path: str, package_bytes: int
) -> dict[str, bytes]:
    """``MLmodel``, the environment files and the input example (``example``: uint8 (S, S)
    pixels, sent as a PNG) for a package of ``package_bytes`` bytes logged at
    ``runs:/<run_id>/<artifact_path>``."""
    import mlflow.pyfunc
    import onnx
    import pandas as pd
    from mlflow.models import Model

    threshold = card.operating_threshold()
    metadata = {
        "threshold": threshold, "preprocessing": card.preprocess_spec().to_dict(),
        "card_format": FORMAT, "pneumo_version": __version__, "model_name": card.name,
        "onnx_input": "image: uint8 (N, 1, S, S) pixels, normalised in the graph",
        "onnx_outputs": ["probability", "embedding"],
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        mlflow.pyfunc.save_model(
            str(path), loader_module=LOADER, signature=signature(),
            input_example=pd.DataFrame({"image": [png(example)]}), metadata=metadata,
            pip_requirements=[f"pneumo[serve]=={__version__}"],
            mlflow_model=Model(artifact_path=artifact_path, run_id=run_id),
        )  # fmt: skip
        model = Model.load(str(path / MLMODEL))
        model.flavors[mlflow.pyfunc.FLAVOR_NAME][mlflow.pyfunc.DATA] = "."
        model.add_flavor(
            "onnx", onnx_version=onnx.__version__, data=MODEL_FILE,
            providers=list(PROVIDERS), onnx_session_options=None, code=None,
        )  # fmt: skip
        files = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
        model.model_size_bytes = package_bytes + sum(len(v) for v in files.values())
        files[MLMODEL] = model.to_yaml().encode()
    return files
