"""Downloads (landscape.data.fetch), offline: file:// URLs to files and archives the tests generate."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from test_cifar import write_cifar

from landscape.data import cifar, fetch
from landscape.data.fetch import Limits
from landscape.errors import DataError


def _source(tmp_path: Path, data: bytes = b"x" * 5000) -> tuple[Path, str, str]:
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    return path, hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_fetch_right_checksums(tmp_path: Path) -> None:
    src, md5, sha = _source(tmp_path)
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "file.bin"
    assert fetch.fetch(src.as_uri(), target, md5=md5, sha256=sha, what="a test file") == target
    assert target.read_bytes() == src.read_bytes() and _left(tmp_path / "out") == ["file.bin"]
    assert fetch.verified(target, md5, sha) and not fetch.verified(target, "0" * 32)


@pytest.mark.parametrize("which", ["md5", "sha256"])
def test_fetch_wrong_checksum_leaves_nothing(tmp_path: Path, which: str) -> None:
    src, md5, sha = _source(tmp_path)
    (tmp_path / "out").mkdir()
    sums = {"md5": md5, "sha256": sha, which: "0" * (32 if which == "md5" else 64)}
    with pytest.raises(DataError, match=f"{'MD5' if which == 'md5' else 'SHA-256'} mismatch"):
        fetch.fetch(src.as_uri(), tmp_path / "out" / "file.bin", **sums, what="a test file")
    assert _left(tmp_path / "out") == []


def test_fetch_needs_a_checksum_and_a_reachable_url(tmp_path: Path) -> None:
    src, _, _ = _source(tmp_path)
    with pytest.raises(DataError, match="without a checksum"):
        fetch.fetch(src.as_uri(), tmp_path / "f", md5=None, what="x")
    with pytest.raises(DataError, match="could not download"):
        fetch.fetch((tmp_path / "missing").as_uri(), tmp_path / "f", md5="0" * 32, what="x")
    assert not (tmp_path / "f").exists()


def test_fetch_cuts_off_a_download_over_the_cap(tmp_path: Path) -> None:
    src, md5, _ = _source(tmp_path)
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match="passed the cap of 4,999 bytes"):
        fetch.fetch(src.as_uri(), tmp_path / "out" / "f", md5=md5, what="x", limits=Limits(max_bytes=4999))
    assert _left(tmp_path / "out") == []
    exact = fetch.fetch(src.as_uri(), tmp_path / "out" / "f", md5=md5, what="x", limits=Limits(max_bytes=5000))
    assert exact.read_bytes() == src.read_bytes()  # a download of exactly the cap is kept whole


def test_limits_are_validated() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(DataError, match="positive integer"):
            Limits(max_bytes=bad)  # type: ignore[arg-type]


def test_gunzip_bomb_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(bytes(20_000_000)))  # 20 MB of zeros in about 20 kB
    assert bomb.stat().st_size < 100_000
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match="decompresses to more than 1,000,000 bytes"):
        fetch.gunzip(bomb, tmp_path / "out" / "file", limits=Limits(max_bytes=1_000_000))
    assert _left(tmp_path / "out") == []
    assert fetch.gunzip(bomb, tmp_path / "out" / "file", limits=Limits(max_bytes=20_000_000)).stat().st_size == \
        20_000_000  # exactly the cap is allowed
    assert fetch.gunzip(bomb, tmp_path / "out" / "file").stat().st_size == 20_000_000  # the default cap allows it


def test_gunzip_refuses_what_is_not_gzip(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable gzip file"):
        fetch.gunzip(tmp_path / "plain", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _tar_bomb(path: Path, members: int, member_size: int) -> str:
    """A .tar.gz with the CIFAR-10 folder plus `members` files of `member_size` zero bytes each."""
    write_cifar(path.parent / "src", 10)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(path.parent / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        for i in range(members):
            info = tarfile.TarInfo(f"cifar-10-batches-py/pad{i}")
            info.size = member_size
            tar.addfile(info, io.BytesIO(bytes(member_size)))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_tar_bomb_over_the_byte_cap_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.tar.gz"
    md5 = _tar_bomb(archive, members=2, member_size=20_000_000)  # 40 MB of zeros
    assert archive.stat().st_size < 1_000_000  # (the tiny CIFAR batches are random bytes, about 0.4 MB)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="would extract to more than 10,000,000 bytes"):
        cifar.download("cifar10", root, url=archive.as_uri(), md5=md5, limits=Limits(max_bytes=10_000_000))
    assert _left(root) == ["cifar-10-python.tar.gz"]  # the verified archive is kept, nothing was extracted


def test_tar_with_too_many_members_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "many.tar.gz"
    md5 = _tar_bomb(archive, members=30, member_size=1)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="more than 20 members"):
        cifar.download("cifar10", root, url=archive.as_uri(), md5=md5, limits=Limits(max_members=20))
    assert _left(root) == ["cifar-10-python.tar.gz"]
    assert cifar.download("cifar10", root, url=archive.as_uri(), md5=md5).is_dir()  # under the default caps


def test_sparse_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "sparse.tar"
    write_cifar(tmp_path / "src", 10)
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        info = tarfile.TarInfo("cifar-10-batches-py/sparse")
        info.type = tarfile.GNUTYPE_SPARSE
        tar.addfile(info)
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError, match="link or special file"):
        fetch.extract_tar(archive, root, "cifar-10-batches-py", complete=lambda _: True, what="x")
    assert _left(root) == []


def _header(name: bytes, kind: bytes, size: int) -> bytes:
    """One 512-byte ustar header block (checksum filled in)."""
    block = bytearray(512)
    block[:len(name)] = name
    block[100:136] = b"0000644\0" + b"0000000\0" + b"0000000\0" + b"%011o\0" % size
    block[136:148], block[156:157], block[257:265] = b"00000000000\0", kind, b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


@pytest.mark.parametrize("kind, data", [
    (tarfile.XHDTYPE, b"0" * 32768),  # digits: tarfile's pax regex is quadratic in them (300 MB: over 11 minutes)
    (tarfile.GNUTYPE_LONGNAME, b"a" * (8 << 20)),  # read whole into memory (300 MB from a 0.6 MB .tar.gz)
])
def test_oversized_extended_tar_headers_are_refused_before_they_are_read(tmp_path: Path, kind: bytes,
                                                                         data: bytes) -> None:
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(gzip.compress(_header(b"h", kind, len(data)) + _padded(data) + _header(b"f", b"0", 0)
                                      + b"\0" * 1024, compresslevel=1))
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError, match=rf"bomb.tar.gz: refused, its extended \(pax or long-name\) headers run to one "
                                        rf"of {len(data):,} bytes, 1 in a row"):
        fetch.extract_tar(archive, root, "cifar-10-batches-py", complete=lambda _: True, what="x")
    assert _left(root) == []


@pytest.mark.parametrize("kind, record", [(tarfile.XHDTYPE, b"11 a=bcdef\n"), (tarfile.GNUTYPE_LONGNAME, b"n\0")])
def test_a_chain_of_extended_tar_headers_is_refused(tmp_path: Path, kind: bytes, record: bytes) -> None:
    archive = tmp_path / "chain.tar"  # 1,500 headers in a row: tarfile recursed once each (RecursionError)
    archive.write_bytes((_header(b"h", kind, len(record)) + _padded(record)) * 1500 + _header(b"f", b"0", 0)
                        + b"\0" * 1024)
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError, match=r"chain.tar: refused, .* 9 in a row"):
        fetch.extract_tar(archive, root, "cifar-10-batches-py", complete=lambda _: True, what="x")


def test_genuine_pax_headers_are_read(tmp_path: Path) -> None:
    write_cifar(tmp_path / "src", 10)
    archive = tmp_path / "pax.tar"
    long_name = "cifar-10-batches-py/" + "/".join(["n" * 60] * 4)  # over 100 characters: a pax "path" record
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}) as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        info = tarfile.TarInfo(long_name)
        info.size, info.pax_headers = 1, {"comment": "é" * 100}
        tar.addfile(info, io.BytesIO(b"x"))
    root = tmp_path / "data"
    root.mkdir()
    out = fetch.extract_tar(archive, root, "cifar-10-batches-py", complete=lambda _: True, what="x")
    assert (root / long_name).read_bytes() == b"x" and out == root / "cifar-10-batches-py"
