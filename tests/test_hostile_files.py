"""Hostile data files (.npz, uploads, image folders): forged headers and bombs refused clearly, nothing allocated.

Every file here is a few kilobytes; what it claims (gigabytes, a billion classes) is never allocated.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landscape import userconfig
from landscape.config import DataSpec
from landscape.data import folder, npz
from landscape.errors import DataError
from landscape.userconfig import keep_upload


def _npy(shape: tuple[int, ...], descr: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def _archive(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


Y = ("y.npy", _npy((4,), "<i8", np.array([0, 1, 0, 1], np.int64).tobytes()))


def _load(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hostile.npz"
    path.write_bytes(content)
    npz.load(DataSpec("npz", root=str(path)))


# ---------------------------------------------------------------------------------------------- npz


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("members, match", [
    ([("x.npy", _npy((4, 8, 8), "|u1", b"\0" * 10)), Y], r"not a readable .npz archive \(EOF: reading array data"),
    ([("x.npy", _npy((-4, 8, 8), "|u1", b"")), Y], r"array 'x' has shape \(-4, 8, 8\); a size cannot be negative"),
    ([("x.npy", _npy((2**40,) * 3, "|u1", b"")), Y], r"array 'x' of shape .* over the 8 GiB limit"),  # int64 wraps
    ([("x.npy", _npy((4, 8, 8), "|u1", b"\0" * 256)), ("x", _npy((4, 8, 8), "|u1", b"\0" * 255)), Y],
     "holds the array 'x' twice"),
    ([("x.npy", _npy((4, 8, 8), "|u1", b"\0" * 256)), ("y.npy", _npy((4,), "<u8", b"\xff" * 32))],
     "y holds the label 18446744073709551615; labels must be class indices"),
], ids=["truncated", "negative", "overflowing", "twice", "uint64"])
def test_forged_npz_headers_are_refused_naming_the_array(tmp_path: Path, members: list, match: str) -> None:
    with pytest.raises(DataError, match=match):
        _load(tmp_path, _archive(members))


def test_an_npz_header_claiming_megabytes_is_not_read(tmp_path: Path) -> None:
    # NumPy reads a header's claimed length (up to 4 GiB, compressed 1000-fold) before it refuses it as too long
    claimed = 1 << 20
    member = b"\x93NUMPY\x02\x00" + claimed.to_bytes(4, "little") + b" " * claimed
    with pytest.raises(DataError, match=rf"reading array header, expected {claimed} bytes got 65524"):
        _load(tmp_path, _archive([("x.npy", member), Y], zipfile.ZIP_DEFLATED))


def test_a_label_of_ten_million_is_refused_before_anything_that_size_is_built(tmp_path: Path) -> None:
    y = np.array([0, 1, 0, 1, 0, 10**7], np.int64)  # the old loader built set(range(K)): 10^9 asked for 60 GB
    with pytest.raises(DataError, match=r"10,000,001 classes \(labels 0..10,000,000\) but 6 images to train on"):
        _load(tmp_path, _archive([("x.npy", _npy((6, 8, 8), "|u1", b"\0" * 384)),
                                  ("y.npy", _npy((6,), "<i8", y.tobytes()))]))


def test_an_upload_that_decompresses_past_the_limit_is_refused_unread(store, monkeypatch: pytest.MonkeyPatch) -> None:
    # the limit made small: a 64 MiB upload of zeros decodes to 64 GiB (0.3 MB gave the old check 4.4 GB of RSS)
    monkeypatch.setattr(userconfig, "MAX_UPLOAD_DECODED_BYTES", 1 << 20, raising=False)
    monkeypatch.setattr(npz, "to_nchw", lambda *a: pytest.fail("the arrays were read"))
    x, y = np.zeros((200, 3, 32, 32), np.uint8), np.arange(200) % 2  # 2.3 MiB as float32
    buf = io.BytesIO()
    np.savez_compressed(buf, x=x, y=y)
    with pytest.raises(DataError, match=r"^big.npz's arrays take 2 MiB once decompressed .* over the upload limit "
                                        r"of 1 MiB"):
        keep_upload(buf.getvalue(), store, name="big.npz")
    assert not (store.root / "inputs").exists()


# ---------------------------------------------------------------------------------------------- folders


def _folder(root: Path, side: int = 8, n: int = 3) -> Path:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (side, side), 40 * i).save(root / c / f"{i}.png")
    return root


def test_a_class_folder_entry_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    root = _folder(tmp_path / "set")
    (root / "a" / "zero.png").symlink_to("/dev/null")  # /dev/zero or a FIFO: the old loader read it forever
    with pytest.raises(DataError, match=r"zero.png is not a regular file"):
        folder.load(DataSpec("folder", root=str(root)))


def test_folder_images_past_the_size_limit_are_refused_before_decoding(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "set", side=300)  # 6 images of 300x300 grey: 2 MiB as float32
    monkeypatch.setattr(folder, "MAX_ARRAY_BYTES", 1 << 20, raising=False)
    monkeypatch.setattr(folder, "_decode", lambda *a: pytest.fail("an image was decoded"))
    with pytest.raises(DataError, match=r"would take over 1 MiB as float32 \(at .*300x300\), over the 1 MiB limit.*"
                                        r"\?size=N"):
        folder.load(DataSpec("folder", root=str(root)))
    monkeypatch.undo()
    assert folder.load(DataSpec("folder", root=str(root), resize=8)).image_shape == (1, 8, 8)
