"""Shared fixtures: an isolated PNEUMO_ROOT per test, image-file makers, the real-data folder."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom.dataset
import pytest
from PIL import Image

from pneumo.data.sources.datasets import Dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def pneumo_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own PNEUMO_ROOT and no PNEUMO_ settings from the caller's shell."""
    for key in list(os.environ):
        if key.startswith("PNEUMO_") and key != "PNEUMO_TEST_DATA":
            monkeypatch.delenv(key)
    root = tmp_path / "pneumo-root"
    monkeypatch.setenv("PNEUMO_ROOT", str(root))
    yield root


@pytest.fixture
def real_data() -> Path:
    """../shared/data (or $PNEUMO_TEST_DATA); the test is skipped when it is absent."""
    path = Path(os.environ.get("PNEUMO_TEST_DATA", REPO.parent / "shared" / "data"))
    if not (path / "nih-sample").is_dir():
        pytest.skip(f"real data not found at {path} (set PNEUMO_TEST_DATA)")
    return path


def gradient(size: int = 64, seed: int = 0) -> np.ndarray:
    """A deterministic 8-bit test image with structure (so resizing bugs show)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = (x * 255 // max(size - 1, 1) + y * 3) % 256
    noisy: np.ndarray = np.clip(base + rng.integers(-8, 8, size=(size, size)), 0, 255)
    return noisy.astype(np.uint8)


def png_bytes(image: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **params)
    return buf.getvalue()


NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)


def label_row(image_id: str, patient: int, pneumonia: bool, size: int = 64) -> str:
    findings = "Pneumonia" if pneumonia else "No Finding"
    sex, view = ("M", "PA") if patient % 2 else ("F", "AP")
    age = 20 + patient % 60
    return f"{image_id},{findings},0,{patient},{age},{sex},{view},{size},{size},0.14,0.14"


def write_nih_dataset(root: Path, n: int, size: int = 64, seed: int = 0) -> list[str]:
    """n distinct 8-bit PNGs in NIH layout (images/ + label CSV), one patient per image."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, ids = [NIH_HEADER], []
    for i in range(n):
        image_id = f"{i + 1:08d}_000.png"
        noise = rng.integers(0, 40, size=(size, size))
        pixels = np.clip(gradient(size, seed=i).astype(int) // 2 + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / "images" / image_id)
        rows.append(label_row(image_id, i + 1, pneumonia=i % 3 == 0, size=size))
        ids.append(image_id)
    (root / "Data_Entry_2017.csv").write_text("\n".join(rows) + "\n")
    return ids


# `pneumo demo` in seconds rather than minutes: a small synthetic set, one epoch.
DEMO_SMALL = [
    "synthetic.patients=40",
    "synthetic.image_size=64",
    "prepare.image_size=32",
    "train.epochs=1",
    "train.batch_size=16",
    "train.workers=0",
    "evaluate.n_boot=50",
]
TINY_TRAIN = [
    "train.backbone=resnet18",
    "train.epochs=2",
    "train.batch_size=8",
    "train.workers=0",
    "train.checkpoint_every=2",
]


def torchrun_train(dataset: str, *overrides: str) -> list[str]:
    """`pneumo train` on ``dataset`` under torchrun: two CPU processes, gloo, TINY_TRAIN."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--standalone", "--nnodes", "1",
        "-m", "pneumo", "train", "--quiet", "-d", dataset, *TINY_TRAIN, "train.device=cpu",
        *overrides,
    ]  # fmt: skip


def tiny_prepared(name: str = "tiny", patients: int = 30, size: int = 32) -> Dataset:
    """A small synthetic dataset, registered and prepared under the current PNEUMO_ROOT."""
    from pneumo import storage
    from pneumo.config import SyntheticConfig, load_config
    from pneumo.data.preparation import prepare
    from pneumo.data.sources import datasets, synthetic
    from pneumo.settings import get_settings

    settings = get_settings()
    dest = storage.join(settings.data, name)
    config = SyntheticConfig(
        patients=patients, max_images_per_patient=2, image_size=64, prevalence=0.5, seed=1
    )
    synthetic.generate(dest, config, settings=settings, progress=False)
    entry = datasets.register(dest, source="synthetic", name=name, settings=settings)
    prepare(entry, load_config(None, [f"prepare.image_size={size}"]), settings, progress=False)
    return entry


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's standalone S3 server on 127.0.0.1 (what s3fs tests against), with the AWS_* and
    PNEUMO_S3_ENDPOINT_URL variables pointing at it; stopped after the test."""
    import socket

    moto_server = pytest.importorskip("moto.server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
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


def dicom_dataset(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    slope: float = 1,
    intercept: float = 0,
    window: tuple[float, float] | None = None,
    bits: int = 16,
    patient_name: str = "Doe^Jane^Test",
) -> pydicom.dataset.FileDataset:
    """A minimal DX DICOM dataset (Explicit VR Little Endian) holding ``pixels``.

    ``pixels``: (rows, cols) gray, (frames, rows, cols) multi-frame gray, (rows, cols, 3) colour
    (with ``photometric="RGB"``); stored as uint8 when ``bits <= 8``, else uint16 (int16 when
    ``pixels`` is signed). ``window`` is (center, width). Rescale slope and intercept are always
    written. Edit the result to build unusual files, then serialise with :func:`dicom_file_bytes`.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.1.1")  # Digital X-Ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset("test.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientName = patient_name
    ds.PatientID = "PID-0042-SECRET"
    signed = pixels.dtype.kind == "i"
    dtype = np.uint8 if bits <= 8 else (np.int16 if signed else np.uint16)
    ds.set_pixel_data(pixels.astype(dtype), photometric, bits, generate_instance_uid=False)
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    return ds


def dicom_file_bytes(ds: pydicom.dataset.Dataset) -> bytes:
    """A dataset as DICOM Part 10 file bytes (128-byte preamble, ``DICM``, file meta)."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def dicom_bytes(pixels: np.ndarray, **options: Any) -> bytes:
    """A small DICOM file holding ``pixels``; see :func:`dicom_dataset` for the arguments."""
    return dicom_file_bytes(dicom_dataset(pixels, **options))


def gdcm_encoded(data: bytes, syntax: str) -> bytes:
    """DICOM file ``data`` re-encoded by GDCM in the transfer syntax ``syntax`` (a name of
    ``gdcm.TransferSyntax``: JPEGLosslessProcess14_1, JPEGLSLossless, JPEG2000Lossless,
    RLELossless, JPEGBaselineProcess1, JPEGExtendedProcess2_4...): an encoder nobody here wrote."""
    import tempfile

    import gdcm  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.dcm"), Path(folder, "out.dcm")
        source.write_bytes(data)
        reader = gdcm.ImageReader()
        reader.SetFileName(str(source))
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, syntax)))
        writer = gdcm.ImageWriter()
        writer.SetFileName(str(target))
        if not reader.Read():
            raise ValueError("GDCM cannot read the source file")
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise ValueError(f"GDCM cannot encode this image as {syntax}")
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        if not writer.Write():
            raise ValueError("GDCM cannot write the encoded file")
        return target.read_bytes()


def rgba_png(width: int, height: int, rows: int | None = None) -> bytes:
    """A valid RGBA PNG of zeros (a few hundred KB for hundreds of MB of pixels); with
    ``rows``, only that many rows of data (truncated: the decoder allocates, then fails)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    line = b"\x00" * (1 + 4 * width)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(line) for _ in range(height if rows is None else rows))
    idat += packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
