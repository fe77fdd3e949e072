"""Open Inference Protocol v2 bodies: an inference request in, a response out.

The request is JSON (the KServe/Triton REST schema), optionally followed by binary tensor data
(Triton's binary extension, what ``tritonclient`` sends by default: the JSON's length in the
``Inference-Header-Content-Length`` header, each input's bytes after it, ``BYTES`` elements as
a 4-byte little-endian length and the bytes). This model takes one input, ``image``, either
``BYTES`` (encoded PNG, JPEG or DICOM files, one per element; in JSON as base64 strings) or
``UINT8`` pixels shaped ``(N, 1, S, S)`` at the model's size (model.onnx's own input). Anything
else is an :class:`ApiError` naming the field, as ``/v1`` names its form fields.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from pneumo.packaging.signature import INPUT_NAME, OUTPUT_NAME
from pneumo.serving.api_errors import ApiError

LABEL_OUTPUT = "label"
OUTPUTS = {OUTPUT_NAME: "FP32", LABEL_OUTPUT: "BYTES"}
HEADER_LENGTH = "inference-header-content-length"


def _invalid(detail: str) -> ApiError:
    return ApiError(422, "invalid_request", detail)


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    files: list[bytes] | None  # BYTES: encoded files
    pixels: np.ndarray | None  # UINT8: (N, S, S)
    outputs: dict[str, bool]  # requested output → as binary data

    @property
    def count(self) -> int:
        if self.files is not None:
            return len(self.files)
        return 0 if self.pixels is None else len(self.pixels)


def _header(
    body: bytes, header_length: str | None, json_limit: int
) -> tuple[dict[str, Any], bytes]:
    if header_length is None:
        head, rest = body, b""
    elif not header_length.isdigit() or int(header_length) > len(body):
        raise _invalid(f"Inference-Header-Content-Length {header_length!r} is not a length "
                       f"within the body ({len(body)} bytes)")  # fmt: skip
    else:
        head, rest = body[: int(header_length)], body[int(header_length) :]
    if len(head) > json_limit:
        raise ApiError(
            413, "too_large",
            f"the JSON of an inference request is limited to {json_limit / 2**20:.0f} MB: send "
            "the files as binary data (tritonclient's default) or in several requests",
        )  # fmt: skip
    try:
        request = json.loads(head)
    except (UnicodeDecodeError, ValueError):
        raise _invalid(
            "the body is not an inference request (JSON, then any binary data)"
        ) from None
    if not isinstance(request, dict):
        raise _invalid("the inference request must be a JSON object")
    return request, rest


def _shape(tensor: dict[str, Any]) -> list[int]:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _invalid("inputs[0].shape: a list of non-negative integers is required")
    return shape


def _elements(tensor: dict[str, Any], raw: bytes | None, count: int) -> list[bytes]:
    """The BYTES elements: length-prefixed binary data, or base64 strings in JSON."""
    items: list[bytes] = []
    if raw is not None:
        at = 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise _invalid("inputs[0]: the binary BYTES data ends inside a length prefix")
            (size,) = struct.unpack_from("<I", raw, at)
            if at + 4 + size > len(raw):
                raise _invalid(f"inputs[0]: element {len(items)} is cut short in the binary data")
            items.append(raw[at + 4 : at + 4 + size])
            at += 4 + size
    else:
        data = np.asarray(tensor.get("data", []), dtype=object).reshape(-1).tolist()
        for i, item in enumerate(data):
            try:
                items.append(base64.b64decode(item, validate=True))
            except (binascii.Error, TypeError, ValueError):
                raise _invalid(
                    f"image[{i}]: in JSON an encoded file goes as a base64 string "
                    "(or send it as binary data: tritonclient's binary_data=True)"
                ) from None
    if len(items) != count:
        raise _invalid(f"inputs[0]: {len(items)} elements where the shape says {count}")
    return items


def _pixels(tensor: dict[str, Any], raw: bytes | None, shape: list[int], size: int) -> np.ndarray:
    if len(shape) != 4 or shape[1:] != [1, size, size]:
        raise _invalid(f"inputs[0].shape {shape}: UINT8 pixels go as [N, 1, {size}, {size}], "
                       "this model's size (or send encoded files as BYTES)")  # fmt: skip
    n = shape[0]
    if raw is not None:
        if len(raw) != n * size * size:
            raise _invalid(f"inputs[0]: {len(raw)} bytes of binary data for shape {shape}")
        return np.frombuffer(raw, dtype=np.uint8).reshape(n, size, size).copy()
    try:
        values = np.asarray(tensor.get("data", []), dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise _invalid("inputs[0].data: UINT8 data must be integers 0-255") from None
    if values.size != n * size * size or (
        values.size and not 0 <= values.min() <= values.max() <= 255
    ):
        raise _invalid(f"inputs[0].data: {values.size} integers 0-255 needed for shape {shape}")
    return values.astype(np.uint8).reshape(n, size, size)


def _outputs(request: dict[str, Any]) -> dict[str, bool]:
    params = request.get("parameters") or {}
    binary = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    asked = request.get("outputs")
    if asked is None:
        return dict.fromkeys(OUTPUTS, binary)
    wanted: dict[str, bool] = {}
    for i, out in enumerate(asked if isinstance(asked, list) else [None]):
        name = out.get("name") if isinstance(out, dict) else None
        if name not in OUTPUTS:
            raise _invalid(f"outputs[{i}].name: {name!r} is not an output (they are "
                           f"{', '.join(OUTPUTS)})")  # fmt: skip
        extra = out.get("parameters") or {}
        wanted[name] = bool(extra.get("binary_data", binary)) if isinstance(extra, dict) else binary
    return wanted


def parse_request(
    body: bytes, header_length: str | None, size: int, json_limit: int
) -> InferRequest:
    """An inference request for a model taking ``size``-pixel images; its JSON part (parsed
    whole, before anything is checked) at most ``json_limit`` bytes."""
    request, rest = _header(body, header_length, json_limit)
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise _invalid(f"inputs: exactly one input, '{INPUT_NAME}', is expected")
    tensor = inputs[0]
    if tensor.get("name") != INPUT_NAME:
        raise _invalid(f"inputs[0].name: {tensor.get('name')!r} is not an input of this model "
                       f"(it takes '{INPUT_NAME}')")  # fmt: skip
    shape = _shape(tensor)
    params = tensor.get("parameters") or {}
    binary_size = params.get("binary_data_size") if isinstance(params, dict) else None
    if binary_size is not None and (not isinstance(binary_size, int) or binary_size != len(rest)):
        raise _invalid(f"inputs[0].parameters.binary_data_size {binary_size!r} is not the "
                       f"{len(rest)} bytes after the JSON")  # fmt: skip
    if binary_size is None and rest:
        raise _invalid("binary data after the JSON, but no input declares binary_data_size")
    raw = rest if binary_size is not None else None
    datatype = tensor.get("datatype")
    rid = request.get("id")
    rid = rid if isinstance(rid, str) else None
    if datatype == "BYTES":
        count = int(np.prod(shape)) if shape else 0
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise _invalid(f"inputs[0].shape {shape}: BYTES go as [N] (or [N, 1]), one file each")
        return InferRequest(rid, _elements(tensor, raw, count), None, _outputs(request))
    if datatype == "UINT8":
        return InferRequest(rid, None, _pixels(tensor, raw, shape, size), _outputs(request))
    raise _invalid(f"inputs[0].datatype {datatype!r}: send BYTES (encoded PNG, JPEG or DICOM "
                   f"files) or UINT8 pixels [N, 1, {size}, {size}]")  # fmt: skip


def _serialize_bytes(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def encode_response(
    head: dict[str, Any], probabilities: list[float], labels: list[str], outputs: dict[str, bool]
) -> tuple[bytes, int | None]:
    """The response body, and the JSON's length when binary output data follows it."""
    values: dict[str, tuple[list[Any], bytes]] = {
        OUTPUT_NAME: (probabilities, np.asarray(probabilities, dtype="<f4").tobytes()),
        LABEL_OUTPUT: (labels, _serialize_bytes([label.encode() for label in labels])),
    }
    tensors, blobs = [], []
    for name, binary in outputs.items():
        data, blob = values[name]
        tensor: dict[str, Any] = {"name": name, "datatype": OUTPUTS[name], "shape": [len(data)]}
        if binary:
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = data
        tensors.append(tensor)
    text = json.dumps({**head, "outputs": tensors}).encode()
    if not blobs:
        return text, None
    return text + b"".join(blobs), len(text)
