"""Backbone weights read from an s3:// URL, through a real S3-protocol server.

The server is moto's standalone S3 server, started on 127.0.0.1 inside the test and stopped
after it (the same setup as tests/integration/test_s3.py).
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest
import torch

from pneumo.errors import PneumoError
from pneumo.models import build_model

moto_server = pytest.importorskip("moto.server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PNEUMO_S3_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield endpoint
    finally:
        server.stop()


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
