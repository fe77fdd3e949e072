"""ONNX Runtime, imported with its telemetry off.

ONNX Runtime writes a device id and an event database under ``~/.cache/Microsoft`` when it is
imported, unless ``ORT_DISABLE_TELEMETRY`` is set first: a hospital's server should not. Every
pneumo module that needs ONNX Runtime imports it through :func:`onnxruntime`.
"""

from __future__ import annotations

import os
from types import ModuleType


def onnxruntime() -> ModuleType:
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    module: ModuleType = ort
    return module
