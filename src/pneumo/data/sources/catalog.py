"""Where the public chest X-ray datasets live, and what their files must look like.

Sizes and checksums are pinned so that `pneumo fetch` can prove it received the published
bytes. Only values found in public records are listed; each group says where they come from.
A file without size or checksum still downloads, with a warning that it could not be verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Source = Literal["nih", "kermany"]


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name in the download folder (and in a mirror)
    url: str
    size: int | None = None  # bytes
    sha256: str | None = None  # lower-case hex
    md5: str | None = None  # lower-case hex


# --- NIH ChestX-ray14 (https://nihcc.app.box.com/v/ChestXray-NIHCC) -------------------------
#
# Archive URLs: the "links" list of NIH's batch_download_zips.py (Box static links, in archive
# order). Sizes: Box item sizes / Content-Range totals, as recorded by two independent public
# projects. MD5s: published by NIH in FAQ_CHESTXRAY.pdf, question Q07 (NIH publishes no SHA-256
# for the archives).
_STATIC = "https://nihcc.box.com/shared/static/"
_NIH_ARCHIVES: tuple[tuple[str, int, str], ...] = (
    ("vfk49d74nhbxq3nqjg0900w5nvkorp5c", 2_008_470_987, "fe8ed0a6961412fddcbb3603c11b3698"),
    ("i28rlmbvmfjbl8p2n3ril0pptcmcu9d1", 3_952_623_504, "ab07a2d7cbe6f65ddd97b4ed7bde10bf"),
    ("f1t00wrtdk94satdfb9olcolqx20z2jp", 3_929_234_850, "2301d03bde4c246388bad3876965d574"),
    ("0aowwzs5lhjrceb3qp67ahp0rd1l1etg", 3_838_903_983, "9f1b7f5aae01b13f4bc8e2c44a4b8ef6"),
    ("v5e3goj22zr6h8tzualxfsqlqaygfbsn", 3_935_496_531, "1861f3cd0ef7734df8104f2b0309023b"),
    ("asi7ikud9jwnkrnkj99jnpfkjdes7l6l", 3_986_301_172, "456b53a8b351afd92a35bc41444c58c8"),
    ("jn1b4mw4n6lnh74ovmcjb8y48h8xj07n", 4_016_328_426, "1075121ea20a137b87f290d6a4a5965e"),
    ("tvpxmn7qyrgl0w8wfh9kqfjskv6nmm1j", 4_018_347_353, "b61f34cec3aa69f295fbb593cbd9d443"),
    ("upyy3ml7qdumlgk2rfcvlb9k6gvqq2pj", 4_111_327_929, "442a3caa61ae9b64e61c561294d1e183"),
    ("l6nilvfa9cg3s28tqv1qc1olm3gnz54p", 4_181_556_296, "09ec81c4c31e32858ad8cf965c494b74"),
    ("hhq8fkdgvcari67vfhs7ppg2w6ni4jze", 4_187_084_020, "499aefc67207a5a97692424cf5dbeed5"),
    ("ioqwiy20ihqwyr8pf4c24eazhh281pbu", 2_914_187_733, "dc9fda1757c2de0032b63347a7d2895c"),
)
NIH_ARCHIVE_COUNT = len(_NIH_ARCHIVES)

# Label and split files: the Box folder's "Download" links (file ids of the official items).
# NIH publishes no checksum for them; the sizes and SHA-256 below are those a public project
# recorded from the official Box items and enforces when it reads them. If NIH re-uploads one
# of these files the check fails with a ChecksumError, which is the point: labels changed.
_BOX_FILE = (
    "https://nihcc.app.box.com/index.php?rm=box_download_shared_file"
    "&vanity_name=ChestXray-NIHCC&file_id=f_{}"
)
_NIH_METADATA: tuple[tuple[str, str, int, str], ...] = (
    (
        "Data_Entry_2017_v2020.csv",
        "219760887468",
        9_003_496,
        "c69a6daca3549af707ca9cacbdf9f9a7b6a9188e8c61157df653520bb72d8eb1",
    ),
    (
        "train_val_list.txt",
        "256056636701",
        1_470_907,
        "61fbe896321c1c1c8b75f3e4f3a08e4fef6486d95ef8a667c31d4d60dca6cb81",
    ),
    (
        "test_list.txt",
        "256055473534",
        435_131,
        "38ca5ef7f756092946f57c1a59faca882ed589a1ab1f72590b45dc06c6d5e1cc",
    ),
    (
        "BBox_List_2017.csv",
        "219760940956",
        92_416,
        "0bbfea9d4c4e9771481b3023b1bc9f0df9dea924453b12986beb29b0c4d0c95b",
    ),
)

# --- Kermany et al. 2018, Mendeley Data doi:10.17632/rscbjbr9sj.2, CC BY 4.0 -----------------
#
# ChestXRay2017.zip (chest_xray/{train,test}/{NORMAL,PNEUMONIA}/*.jpeg). The URL is Mendeley's
# public-files link, which redirects to S3. Mendeley publishes no checksum; the size is the one
# several public projects record, the SHA-256 the one a public project recorded on download.
_KERMANY = RemoteFile(
    name="ChestXRay2017.zip",
    url=(
        "https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/"
        "f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded"
    ),
    size=1_235_512_464,
    sha256="13efc055629733dbab07877f8b3c9f81097840dbcdaa326a8542322c2281ce36",
)


def nih_files() -> list[RemoteFile]:
    """The 12 image archives (in NIH's order) followed by the label and split files."""
    archives = [
        RemoteFile(f"images_{i:03d}.tar.gz", f"{_STATIC}{key}.gz", size, md5=md5)
        for i, (key, size, md5) in enumerate(_NIH_ARCHIVES, start=1)
    ]
    metadata = [
        RemoteFile(name, _BOX_FILE.format(file_id), size, sha256)
        for name, file_id, size, sha256 in _NIH_METADATA
    ]
    return archives + metadata


def kermany_files() -> list[RemoteFile]:
    return [_KERMANY]


def files_for(source: Source) -> list[RemoteFile]:
    return nih_files() if source == "nih" else kermany_files()
