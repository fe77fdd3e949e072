"""Backbone weights read from an s3:// URL, through a real S3-protocol server.

The server is moto's standalone S3 server, started on 127.0.0.1 inside the test and stopped
after it (the `s3_endpoint` fixture in tests/conftest.py).
"""

from __future__ import annotations

import io

import pytest
import torch

from pneumo.errors import PneumoError
from pneumo.models.backbones import build_model


def test_state_dict_loads_from_s3(s3_endpoint: str) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    fs.mkdir("pneumo-weights")
    torch.manual_seed(0)
    original = build_model("mobilenet_v3_large", num_outputs=2)
    buf = io.BytesIO()
    torch.save({"model": original.state_dict()}, buf)
    fs.pipe_file("pneumo-weights/runs/best.pt", buf.getvalue())

    torch.manual_seed(1)
    loaded = build_model(
        "mobilenet_v3_large", num_outputs=2, weights="s3://pneumo-weights/runs/best.pt"
    )
    for (key, a), b in zip(
        original.state_dict().items(), loaded.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), key

    with pytest.raises(PneumoError, match=r"not found: s3://pneumo-weights/runs/missing\.pt"):
        build_model("mobilenet_v3_large", weights="s3://pneumo-weights/runs/missing.pt")
