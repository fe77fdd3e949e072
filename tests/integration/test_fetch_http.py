"""`pneumo fetch nih|kermany` against a real HTTP server on 127.0.0.1.

The server supports Range requests and can drop a connection part-way, so resuming, checksum
refusal, re-run no-ops, extraction layout and path-traversal refusal are exercised end to end.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pneumo.data.sources import datasets, layout
from pneumo.data.sources import download as download_mod
from pneumo.data.sources.catalog import RemoteFile
from pneumo.data.sources.checksums import sidecar_path
from pneumo.data.sources.download import download, part_path
from pneumo.data.sources.remote import MARKER_PREFIX, fetch_remote
from pneumo.errors import ChecksumError, DataError, PneumoError

LABELS = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Sex,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
    "00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143\n"
    "00000001_001.png,Pneumonia,1,1,58,M,PA,2894,2729,0.143,0.143\n"
    "00000002_000.png,No Finding,0,2,81,M,PA,2500,2048,0.171,0.171\n"
)


@dataclass
class Server:
    url: str
    root: Path
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    drop_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent, first time
    honour_range: bool = True
    content_type: str = "application/octet-stream"

    def hits(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.requests if p == path]


def _handler(server: Server) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(server.root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            server.requests.append((self.path, rng))
            file = Path(self.translate_path(self.path))
            if not file.is_file():
                self.send_error(404)
                return
            data = file.read_bytes()
            start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
            if rng and server.honour_range and start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if rng and server.honour_range:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                start = 0
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Type", server.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = server.drop_after.pop(self.path, None)
            self.wfile.write(body if cut is None else body[:cut])
            self.wfile.flush()
            self.close_connection = True

    return Handler


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(url="", root=tmp_path / "srv")
    srv.root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(srv))
    httpd.daemon_threads = True
    srv.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("PNEUMO_DATA_URL", "PNEUMO_PREPARED_URL", "PNEUMO_DOWNLOAD_DIR", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("PNEUMO_ROOT", str(tmp_path / "work"))
    monkeypatch.setattr(download_mod, "_BACKOFF_S", 0.0)
    return tmp_path / "work"


def _png(seed: int, fmt: str = "PNG") -> bytes:
    noise = random.Random(seed).randbytes(40 * 40)  # incompressible, so archives have some size
    buf = io.BytesIO()
    Image.frombytes("L", (40, 40), noise).save(buf, format=fmt)
    return buf.getvalue()


def _serve(server: Server, name: str, data: bytes) -> RemoteFile:
    path = server.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return RemoteFile(name, f"{server.url}/{name}", len(data), sha)


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _nih_images() -> dict[str, bytes]:
    stems = ("00000001_000", "00000001_001", "00000002_000")
    return {f"images/{stem}.png": _png(i) for i, stem in enumerate(stems)}


def _nih_files(server: Server) -> list[RemoteFile]:
    return [
        _serve(server, "images_001.tar.gz", _targz(_nih_images())),
        _serve(server, "Data_Entry_2017_v2020.csv", LABELS.encode()),
    ]


# --- download ---------------------------------------------------------------------------------


def test_checksum_mismatch_is_refused(server: Server, tmp_path: Path) -> None:
    remote = _serve(server, "blob.bin", random.Random(1).randbytes(5000))
    dest = tmp_path / "dl" / "blob.bin"
    with pytest.raises(ChecksumError) as err:
        download(remote.url, dest, size=None, sha256="0" * 64, progress=False)
    message = str(err.value)
    assert "blob.bin" in message and "0" * 64 in message and str(remote.sha256) in message
    assert err.value.hint
    assert not dest.exists() and not part_path(dest).exists() and not sidecar_path(dest).exists()

    with pytest.raises(ChecksumError, match="5001"):  # wrong size: refused before the transfer
        download(remote.url, dest, size=5001, sha256=None, progress=False)
    assert not dest.exists() and not part_path(dest).exists()


def test_interrupted_transfer_is_resumed(server: Server, tmp_path: Path) -> None:
    blob = random.Random(2).randbytes(20_000)
    remote = _serve(server, "blob.bin", blob)
    server.drop_after["/blob.bin"] = 7_000
    dest = download(remote.url, tmp_path / "blob.bin", size=None, sha256=remote.sha256)
    assert dest.read_bytes() == blob
    assert server.hits("/blob.bin") == [None, "bytes=7000-"]
    assert not part_path(dest).exists()


@pytest.mark.parametrize(
    ("prefix", "honour_range", "expected_range"),
    [(6_000, True, "bytes=6000-"), (6_000, False, "bytes=6000-"), (10_000, True, "bytes=10000-")],
    ids=["206-resume", "200-restart", "416-complete"],
)
def test_part_file_from_an_earlier_run(
    server: Server, tmp_path: Path, prefix: int, honour_range: bool, expected_range: str
) -> None:
    blob = random.Random(3).randbytes(10_000)
    remote = _serve(server, "blob.bin", blob)
    server.honour_range = honour_range
    dest = tmp_path / "blob.bin"
    part_path(dest).write_bytes(blob[:prefix])
    download(remote.url, dest, size=None, sha256=remote.sha256, progress=False)
    assert dest.read_bytes() == blob
    assert server.hits("/blob.bin") == [expected_range]


def test_rerun_is_a_noop(server: Server, tmp_path: Path) -> None:
    remote = _serve(server, "blob.bin", random.Random(4).randbytes(3000))
    dest = tmp_path / "blob.bin"
    download(remote.url, dest, size=remote.size, sha256=remote.sha256, progress=False)
    assert sidecar_path(dest).exists() and len(server.requests) == 1
    download(remote.url, dest, size=remote.size, sha256=remote.sha256, progress=False)
    sidecar_path(dest).unlink()  # verified again by hashing, still without the network
    download(remote.url, dest, size=remote.size, sha256=remote.sha256, progress=False)
    assert sidecar_path(dest).exists() and len(server.requests) == 1


def test_changed_file_is_downloaded_again(server: Server, tmp_path: Path) -> None:
    blob = random.Random(5).randbytes(3000)
    remote = _serve(server, "blob.bin", blob)
    dest = download(remote.url, tmp_path / "blob.bin", size=remote.size, sha256=remote.sha256)
    dest.write_bytes(bytes(3000))  # same size, other bytes: the sidecar no longer vouches
    download(remote.url, dest, size=remote.size, sha256=remote.sha256, progress=False)
    assert dest.read_bytes() == blob and len(server.requests) == 2


def test_http_error_names_the_url(server: Server, tmp_path: Path) -> None:
    url = f"{server.url}/missing.bin"
    with pytest.raises(PneumoError, match="404") as err:
        download(url, tmp_path / "missing.bin", size=None, sha256=None, progress=False)
    assert url in str(err.value)


def test_web_page_instead_of_the_file_is_refused(server: Server, tmp_path: Path) -> None:
    remote = _serve(server, "images_001.tar.gz", b"<html>Sign in to Box</html>")
    server.content_type = "text/html; charset=utf-8"
    dest = tmp_path / "images_001.tar.gz"
    with pytest.raises(PneumoError, match="web page"):
        download(remote.url, dest, size=None, sha256=None, progress=False)
    assert not dest.exists()


def test_unverifiable_file_is_downloaded_with_a_warning(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remote = _serve(server, "notes.txt", b"no published checksum\n")
    with caplog.at_level(logging.WARNING, logger="pneumo.data.sources.download"):
        dest = download(remote.url, tmp_path / "notes.txt", size=None, sha256=None)
    assert dest.read_bytes() == b"no published checksum\n"
    assert "could not be verified" in caplog.text


# --- fetch: layout, registry, re-run, traversal -----------------------------------------------


def test_fetch_nih_extracts_registers_and_reruns_as_noop(server: Server, env: Path) -> None:
    files = _nih_files(server)
    dataset = fetch_remote("nih", files=files)
    root = env / "data" / "nih"
    for member, data in _nih_images().items():
        assert (root / "images_001" / member).read_bytes() == data
    assert (root / "Data_Entry_2017_v2020.csv").read_text() == LABELS
    assert (root / f"{MARKER_PREFIX}images_001.tar.gz").read_text().strip() == files[0].sha256
    assert (dataset.name, dataset.source, dataset.layout) == ("nih", "nih", "nih")
    assert dataset.location == str(root.resolve())
    assert layout.detect(str(root)).label_file == str(root / "Data_Entry_2017_v2020.csv")
    current, known = datasets.list_datasets()
    assert current == "nih" and [d.location for d in known] == [dataset.location]

    seen = len(server.requests)
    assert fetch_remote("nih", files=files).location == dataset.location
    for path in (env / "downloads" / "nih").iterdir():  # archives may go once unpacked
        path.unlink()
    fetch_remote("nih", files=files)
    assert len(server.requests) == seen


def test_fetch_kermany_strips_prefix_and_junk(server: Server, env: Path) -> None:
    normal, pneumonia = _png(10, "JPEG"), _png(11, "JPEG")
    archive = _zip(
        {
            "chest_xray/train/NORMAL/IM-0115-0001.jpeg": normal,
            "chest_xray/test/PNEUMONIA/person1_virus_6.jpeg": pneumonia,
            "chest_xray/.DS_Store": b"junk",
            "__MACOSX/chest_xray/train/NORMAL/._IM-0115-0001.jpeg": b"junk",
        }
    )
    dataset = fetch_remote("kermany", files=[_serve(server, "ChestXRay2017.zip", archive)])
    root = env / "data" / "kermany"
    assert (root / "train" / "NORMAL" / "IM-0115-0001.jpeg").read_bytes() == normal
    assert (root / "test" / "PNEUMONIA" / "person1_virus_6.jpeg").read_bytes() == pneumonia
    names = {p.name for p in root.rglob("*")}
    assert not names & {"__MACOSX", ".DS_Store", "chest_xray", "._IM-0115-0001.jpeg"}
    assert (dataset.layout, dataset.source) == ("kermany", "kermany")


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_traversal_member_is_refused(server: Server, env: Path, tmp_path: Path, kind: str) -> None:
    members = {"images/00000001_000.png": _png(0), "../evil.png": b"evil"}
    archive = _targz(members) if kind == "tar.gz" else _zip(members)
    files = [
        _serve(server, f"images_001.{kind}", archive),
        _serve(server, "Data_Entry_2017_v2020.csv", LABELS.encode()),
    ]
    with pytest.raises(DataError, match=r"'\.\./evil\.png'.*outside"):
        fetch_remote("nih", files=files)
    assert not [p for p in tmp_path.rglob("evil.png") if "srv" not in p.parts]
    assert not list((env / "data").rglob(f"{MARKER_PREFIX}images_001*"))


def test_parts_and_mirror(server: Server, env: Path) -> None:
    served = [
        _serve(server, "mirror/images_001.tar.gz", _targz({"images/00000001_000.png": _png(0)})),
        _serve(server, "mirror/images_002.tar.gz", _targz({"images/00000002_000.png": _png(1)})),
        _serve(server, "mirror/Data_Entry_2017_v2020.csv", LABELS.encode()),
    ]
    # Catalog URLs that would fail; the mirror serves every file under its plain name.
    files = [
        RemoteFile(f.name.removeprefix("mirror/"), "http://127.0.0.1:9/gone", f.size, f.sha256)
        for f in served
    ]
    with pytest.raises(DataError, match="3"):
        fetch_remote("nih", files=files, parts=[3])
    with pytest.raises(DataError, match="nih only"):
        fetch_remote("kermany", files=files, parts=[1])
    assert server.requests == []

    dataset = fetch_remote("nih", files=files, parts=[2], mirror=f"{server.url}/mirror/", name="x")
    root = env / "data" / "x"
    assert (root / "images_002" / "images" / "00000002_000.png").exists()
    assert not (root / "images_001").exists()
    assert sorted(p for p, _ in server.requests) == [
        "/mirror/Data_Entry_2017_v2020.csv",
        "/mirror/images_002.tar.gz",
    ]
    assert dataset.name == "x"


def test_fetch_into_object_storage(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    import s3fs

    endpoint = s3_endpoint
    for key, value in {
        "PNEUMO_ROOT": "s3://pneumo-fetch/work",
        "PNEUMO_DOWNLOAD_DIR": str(tmp_path / "downloads"),
    }.items():
        monkeypatch.setenv(key, value)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    fs.mkdir("pneumo-fetch")
    files = _nih_files(server)
    dataset = fetch_remote("nih", files=files)
    root = "pneumo-fetch/work/data/nih"
    assert (dataset.location, dataset.layout) == (f"s3://{root}", "nih")
    for member, data in _nih_images().items():
        assert fs.cat(f"{root}/images_001/{member}") == data
    assert not [p for p in fs.find(root) if ".tmp-" in p]
    seen = len(server.requests)
    fetch_remote("nih", files=files)
    assert len(server.requests) == seen
