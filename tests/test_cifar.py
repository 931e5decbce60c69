"""CIFAR loader and downloader, offline: tiny files written in the exact official layout."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.config import DataSpec
from landscape.data import cifar, load_data
from landscape.errors import DataError

PER_BATCH = 20
CIFAR10_FILES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _dump(obj: object, path: Path, pickler: type[pickle.Pickler] | None = None) -> None:
    with path.open("wb") as f:
        if pickler is None:
            pickle.dump(obj, f, protocol=2)
        else:
            pickler(f, protocol=2).dump(obj)


def write_cifar(root: Path, num_classes: int, pickler: type[pickle.Pickler] | None = None) -> Path:
    """Write a tiny CIFAR-10/100 in the official layout under `root`; return the data folder."""
    if num_classes == 10:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for i, name in enumerate(CIFAR10_FILES):
            batch = {
                b"batch_label": f"{'testing' if name == 'test_batch' else 'training'} batch {i + 1} of 5".encode(),
                b"labels": [(j + i) % 10 for j in range(PER_BATCH)],
                b"data": _images(PER_BATCH, seed=i),
                b"filenames": [f"img_{i}_{j}.png".encode() for j in range(PER_BATCH)],
            }
            _dump(batch, folder / name, pickler)
        meta = {
            b"label_names": [f"class{c}".encode() for c in range(10)],
            b"num_cases_per_batch": PER_BATCH,
            b"num_vis": 3072,
        }
        _dump(meta, folder / "batches.meta", pickler)
        return folder
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for i, (name, n) in enumerate((("train", 200), ("test", 100))):
        batch = {
            b"filenames": [f"img_{j}.png".encode() for j in range(n)],
            b"batch_label": f"{name}ing batch 1 of 1".encode(),
            b"fine_labels": [(j * 7) % 100 for j in range(n)],
            b"coarse_labels": [((j * 7) % 100) // 5 for j in range(n)],
            b"data": _images(n, seed=10 + i),
        }
        _dump(batch, folder / name, pickler)
    meta = {
        b"fine_label_names": [f"fine{c}".encode() for c in range(100)],
        b"coarse_label_names": [f"coarse{c}".encode() for c in range(20)],
    }
    _dump(meta, folder / "meta", pickler)
    return folder


class Py2StylePickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes what Python 2 wrote: every str/bytes as a byte string, NumPy globals under `numpy.core`."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_string(self, obj: bytes | str) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + len(data).to_bytes(4, "little") + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_string
    dispatch[str] = save_py2_string

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")  # type: ignore[attr-defined]
        name = name or obj.__qualname__  # type: ignore[attr-defined]
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


@pytest.fixture()
def cifar10_root(tmp_path: Path) -> Path:
    write_cifar(tmp_path, 10)
    return tmp_path


# ---------------------------------------------------------------------------------------------- load


def test_load_cifar10_layout(cifar10_root: Path) -> None:
    splits = cifar.load(str(cifar10_root), num_classes=10)
    assert splits.name == "cifar10"
    assert splits.train.x.shape == (5 * PER_BATCH, 3, 32, 32)
    assert splits.test.x.shape == (PER_BATCH, 3, 32, 32)
    for part in (splits.train, splits.test):
        assert part.x.dtype == torch.float32 and part.y.dtype == torch.int64
        assert float(part.x.min()) >= 0.0 and float(part.x.max()) <= 1.0
    assert splits.train.class_names == tuple(f"class{c}" for c in range(10))
    assert all(isinstance(n, str) for n in splits.train.class_names)
    assert splits.train.y[:PER_BATCH].tolist() == [j % 10 for j in range(PER_BATCH)]
    assert splits.train.y[PER_BATCH : 2 * PER_BATCH].tolist() == [(j + 1) % 10 for j in range(PER_BATCH)]
    assert splits.test.y.tolist() == [(j + 5) % 10 for j in range(PER_BATCH)]


def test_load_cifar100_layout(tmp_path: Path) -> None:
    write_cifar(tmp_path, 100)
    splits = cifar.load(tmp_path, num_classes=100)
    assert splits.name == "cifar100"
    assert splits.train.x.shape == (200, 3, 32, 32) and splits.test.x.shape == (100, 3, 32, 32)
    assert splits.num_classes == 100
    assert splits.train.class_names[:2] == ("fine0", "fine1") and splits.train.class_names[-1] == "fine99"
    assert splits.train.y.tolist() == [(j * 7) % 100 for j in range(200)]  # fine labels, not coarse
    assert splits.test.y.dtype == torch.int64


def test_pixel_values_and_channel_order(cifar10_root: Path) -> None:
    splits = cifar.load(cifar10_root, num_classes=10)
    raw = _images(PER_BATCH, seed=1)  # data_batch_2
    image = 3  # the 4th image of the second training batch
    row, col = 5, 17
    for channel in range(3):  # R plane, then G, then B, each 32x32 row-major
        byte = raw[image, channel * 1024 + row * 32 + col]
        got = splits.train.x[PER_BATCH + image, channel, row, col].item()
        assert got == pytest.approx(byte / 255.0, abs=1e-7)
    expected = torch.from_numpy(raw.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    torch.testing.assert_close(splits.train.x[PER_BATCH : 2 * PER_BATCH], expected)


def test_pixel_extremes_map_to_0_and_1(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path, 10)
    batch = {
        b"data": np.zeros((2, 3072), np.uint8),
        b"labels": [0, 1],
        b"batch_label": b"x",
        b"filenames": [b"a", b"b"],
    }
    batch[b"data"][1] = 255
    _dump(batch, folder / "test_batch")
    test = cifar.load(tmp_path, num_classes=10).test
    assert float(test.x[0].max()) == 0.0 and float(test.x[1].min()) == 1.0


def test_root_may_be_the_folder_or_its_parent(cifar10_root: Path) -> None:
    from_parent = cifar.load(cifar10_root, num_classes=10)
    from_folder = cifar.load(cifar10_root / "cifar-10-batches-py", num_classes=10)
    assert torch.equal(from_parent.train.x, from_folder.train.x)
    assert torch.equal(from_parent.test.y, from_folder.test.y)


def test_python2_style_pickles_load(tmp_path: Path) -> None:
    """The official files are Python 2 pickles: byte strings everywhere and `numpy.core.multiarray` globals."""
    folder = write_cifar(tmp_path, 10, pickler=Py2StylePickler)
    assert b"numpy.core.multiarray\n_reconstruct" in (folder / "test_batch").read_bytes()
    splits = cifar.load(tmp_path, num_classes=10)
    assert splits.train.class_names[0] == "class0"
    expected = torch.from_numpy(_images(PER_BATCH, seed=5).reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    torch.testing.assert_close(splits.test.x, expected)


def test_load_data_takes_stratified_subsets(cifar10_root: Path) -> None:
    splits = load_data(DataSpec(name="cifar10", root=str(cifar10_root), n_train=50, n_test=10))
    assert splits.name == "cifar10"
    assert len(splits.train) == 50 and len(splits.test) == 10
    assert torch.bincount(splits.train.y, minlength=10).tolist() == [5] * 10
    assert torch.bincount(splits.test.y, minlength=10).tolist() == [1] * 10
    again = load_data(DataSpec(name="cifar10", root=str(cifar10_root), n_train=50, n_test=10))
    assert torch.equal(splits.train.x, again.train.x)


# ---------------------------------------------------------------------------------------------- errors


def test_root_none_is_a_data_error() -> None:
    with pytest.raises(DataError, match="download --dataset cifar10"):
        cifar.load(None, num_classes=10)


@pytest.mark.parametrize("num_classes", [10, 100])
def test_missing_folder_lists_expected_files(tmp_path: Path, num_classes: int) -> None:
    with pytest.raises(DataError) as info:
        cifar.load(tmp_path / "nowhere", num_classes=num_classes)
    message = str(info.value)
    assert "nowhere" in message
    if num_classes == 10:
        for name in ("cifar-10-batches-py", *CIFAR10_FILES, "batches.meta", "download --dataset cifar10"):
            assert name in message
        assert "CIFAR-10 python version" in message
    else:
        for name in ("cifar-100-python", "train", "test", "meta", "download --dataset cifar100"):
            assert name in message


def test_missing_batch_file_is_named(cifar10_root: Path) -> None:
    (cifar10_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3") as info:
        cifar.load(cifar10_root, num_classes=10)
    assert "download --dataset cifar10" in str(info.value)


def test_truncated_batch_file_is_named(cifar10_root: Path) -> None:
    path = cifar10_root / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_2") as info:
        cifar.load(cifar10_root, num_classes=10)
    assert "truncated or corrupt" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"\x80\x02}q\x00(U\x04data"])
def test_garbage_test_batch(cifar10_root: Path, content: bytes) -> None:
    (cifar10_root / "cifar-10-batches-py" / "test_batch").write_bytes(content)
    with pytest.raises(DataError, match="test_batch"):
        cifar.load(cifar10_root, num_classes=10)


@pytest.mark.parametrize(
    "batch",
    [
        {b"data": np.zeros((4, 1024), np.uint8), b"labels": [0, 1, 2, 3]},  # wrong width
        {b"data": np.zeros((4, 3072), np.float32), b"labels": [0, 1, 2, 3]},  # wrong dtype
        {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2]},  # label count
        {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]},  # label range
        {b"data": np.zeros((4, 3072), np.uint8)},  # no labels
        {b"labels": [0, 1, 2, 3]},  # no data
        [np.zeros((4, 3072), np.uint8)],  # not a dict
    ],
)
def test_wrong_keys_or_shapes(cifar10_root: Path, batch: object) -> None:
    _dump(batch, cifar10_root / "cifar-10-batches-py" / "data_batch_4")
    with pytest.raises(DataError, match="data_batch_4"):
        cifar.load(cifar10_root, num_classes=10)


def test_wrong_class_names(cifar10_root: Path) -> None:
    _dump({b"label_names": [b"a", b"b"]}, cifar10_root / "cifar-10-batches-py" / "batches.meta")
    with pytest.raises(DataError, match="batches.meta"):
        cifar.load(cifar10_root, num_classes=10)


class _SystemCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class _Eval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("payload", [_SystemCall, _Eval])
@pytest.mark.parametrize("where", ["data_batch_1", "batches.meta"])
def test_malicious_pickle_is_refused_and_not_run(cifar10_root: Path, payload: type, where: str) -> None:
    marker = cifar10_root / "pwned"
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"evil": payload(marker)}
    _dump(batch, cifar10_root / "cifar-10-batches-py" / where)
    with pytest.raises(DataError) as info:
        cifar.load(cifar10_root, num_classes=10)
    message = str(info.value)
    assert where in message
    assert ("system" in message) if payload is _SystemCall else ("__builtin__.eval" in message)
    assert not marker.exists()


def test_empty_bytes_and_numpy_scalars_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "f"
    _dump({b"batch_label": b"", b"n": np.int64(3), b"names": [b"", b"x"]}, path)
    obj = cifar._read_pickle(path, cifar._LAYOUTS["cifar10"])
    assert obj == {b"batch_label": b"", b"n": 3, b"names": [b"", b"x"]}


def test_restricted_unpickler_refuses_any_other_global(tmp_path: Path) -> None:
    path = tmp_path / "f"
    _dump({b"x": Path("a")}, path)  # pathlib is harmless, but not something a CIFAR file holds
    with pytest.raises(DataError, match="pathlib"):
        cifar._read_pickle(path, cifar._LAYOUTS["cifar10"])


# ---------------------------------------------------------------------------------------------- download


def _tarball(source_root: Path, folder: str, target: Path) -> str:
    with tarfile.open(target, "w:gz") as tar:
        tar.add(source_root / folder, arcname=folder)
    return hashlib.md5(target.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "num_classes", "folder", "archive_name"),
    [
        ("cifar10", 10, "cifar-10-batches-py", "cifar-10-python.tar.gz"),
        ("cifar100", 100, "cifar-100-python", "cifar-100-python.tar.gz"),
    ],
)
def test_download_from_file_url(tmp_path: Path, name: str, num_classes: int, folder: str, archive_name: str) -> None:
    write_cifar(tmp_path / "src", num_classes)
    archive = tmp_path / "archive.tar.gz"
    md5 = _tarball(tmp_path / "src", folder, archive)
    root = tmp_path / "data"
    got = cifar.download(name, str(root), url=archive.as_uri(), md5=md5)
    assert got == root / folder and got.is_dir()
    assert sorted(p.name for p in root.iterdir()) == sorted([folder, archive_name])
    loaded = cifar.load(root, num_classes=num_classes)
    original = cifar.load(tmp_path / "src", num_classes=num_classes)
    assert torch.equal(loaded.train.x, original.train.x)
    # already extracted and complete: nothing is fetched (the URL no longer exists)
    archive.unlink()
    assert cifar.download(name, root, url=archive.as_uri(), md5=md5) == root / folder


def test_download_wrong_md5_leaves_nothing(tmp_path: Path) -> None:
    write_cifar(tmp_path / "src", 10)
    archive = tmp_path / "archive.tar.gz"
    md5 = _tarball(tmp_path / "src", "cifar-10-batches-py", archive)
    root = tmp_path / "data"
    with pytest.raises(DataError) as info:
        cifar.download("cifar10", root, url=archive.as_uri(), md5="0" * 32)
    assert "0" * 32 in str(info.value) and md5 in str(info.value)
    assert not root.exists()  # not even the data folder the download made (it was left behind, empty)
    root.mkdir()  # a folder that was there before stays, and holds nothing new
    with pytest.raises(DataError, match="MD5 mismatch"):
        cifar.download("cifar10", root / "a" / "b", url=archive.as_uri(), md5="0" * 32)
    assert list(root.iterdir()) == []


def test_an_archive_that_is_not_a_tar_is_refused_in_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "archive.tar.gz"
    archive.write_bytes(b"not a tar archive" * 100)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="is not a readable tar archive") as info:
        cifar.download("cifar10", tmp_path / "data", url=archive.as_uri(), md5=md5)
    assert "\n" not in str(info.value), str(info.value)  # tarfile's reason names each method on a line


def test_download_defaults_to_the_official_md5(tmp_path: Path) -> None:
    write_cifar(tmp_path / "src", 10)
    archive = tmp_path / "archive.tar.gz"
    _tarball(tmp_path / "src", "cifar-10-batches-py", archive)
    with pytest.raises(DataError, match="c58f30108f718f92721af3b95e74349a"):
        cifar.download("cifar10", tmp_path / "data", url=archive.as_uri())


def test_download_unreachable_url(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with pytest.raises(DataError, match="could not download"):
        cifar.download("cifar10", root, url=(tmp_path / "missing.tar.gz").as_uri(), md5="0" * 32)
    assert not root.exists()


@pytest.mark.parametrize("md5", ["zz", "0" * 31, "0" * 33, "g" * 32, "0" * 32 + "\n", "", b"0" * 32, 0])
def test_download_refuses_a_malformed_md5_before_any_work(tmp_path: Path, md5: object) -> None:
    """An MD5 no archive can have is refused naming it, before the data folder is made or anything is fetched."""
    from landscape.errors import SpecError

    root = tmp_path / "data"
    with pytest.raises(SpecError, match=f"^{re.escape(repr(md5))} is not an MD5 digest; give the 32 hex digits"):
        cifar.download("cifar10", root, url=(tmp_path / "missing.tar.gz").as_uri(), md5=md5)  # type: ignore[arg-type]
    assert not root.exists()


def test_download_md5_is_checked_once_for_the_api_and_the_cli(tmp_path: Path) -> None:
    """Any case is accepted (compared lower-cased); the CLI's --md5 is the API's check, with the same message."""
    import argparse

    from landscape.commands.download import md5_digest
    from landscape.data.fetch import md5_digest as api_check
    from landscape.errors import SpecError

    write_cifar(tmp_path / "src", 10)
    archive = tmp_path / "archive.tar.gz"
    md5 = _tarball(tmp_path / "src", "cifar-10-batches-py", archive)
    got = cifar.download("cifar10", tmp_path / "data", url=archive.as_uri(), md5=md5.upper())
    assert got == tmp_path / "data" / "cifar-10-batches-py" and md5_digest(md5.upper()) == md5
    with pytest.raises(SpecError) as api:
        api_check("abc")
    with pytest.raises(argparse.ArgumentTypeError) as cli:
        md5_digest("abc")
    assert str(cli.value) == str(api.value)


def _evil_tarball(tmp_path: Path, member: tarfile.TarInfo, payload: bytes = b"evil") -> tuple[Path, str]:
    write_cifar(tmp_path / "src", 10)
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        if member.isfile():
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        else:
            tar.addfile(member)
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


@pytest.mark.parametrize("member_name", ["../evil", "cifar-10-batches-py/../../evil", "/tmp/evil-cifar-test"])
def test_download_refuses_escaping_members(tmp_path: Path, member_name: str) -> None:
    archive, md5 = _evil_tarball(tmp_path, tarfile.TarInfo(member_name))
    root = tmp_path / "a" / "data"
    with pytest.raises(DataError, match="refused the member"):
        cifar.download("cifar10", root, url=archive.as_uri(), md5=md5)
    assert not (tmp_path / "a" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not (root / "cifar-10-batches-py").exists()
    assert [p.name for p in root.iterdir()] == ["cifar-10-python.tar.gz"]  # verified archive kept, nothing extracted


def test_download_refuses_links(tmp_path: Path) -> None:
    link = tarfile.TarInfo("cifar-10-batches-py/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive, md5 = _evil_tarball(tmp_path, link)
    with pytest.raises(DataError, match="link"):
        cifar.download("cifar10", tmp_path / "data", url=archive.as_uri(), md5=md5)


def test_download_refuses_incomplete_archive(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path / "src", 10)
    (folder / "data_batch_5").unlink()
    archive = tmp_path / "archive.tar.gz"
    md5 = _tarball(tmp_path / "src", "cifar-10-batches-py", archive)
    with pytest.raises(DataError, match="does not contain"):
        cifar.download("cifar10", tmp_path / "data", url=archive.as_uri(), md5=md5)
    assert not (tmp_path / "data" / "cifar-10-batches-py").exists()


def test_download_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="cifar10"):
        cifar.download("mnist", tmp_path)


def test_fingerprint_follows_file_contents_not_the_path(cifar10_root: Path,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    from landscape.data.fingerprint import data_fingerprint

    spec = DataSpec(name="cifar10", root=str(cifar10_root))
    before = data_fingerprint(spec)
    assert before == data_fingerprint(spec) and len(before) == 16
    batch = cifar10_root / "cifar-10-batches-py" / "data_batch_3"
    raw = bytearray(batch.read_bytes())
    raw[-1] ^= 1  # one bit of the last pixel
    batch.write_bytes(bytes(raw))
    assert data_fingerprint(spec) != before
    batch.write_bytes(bytes(raw[:-1]) + bytes([raw[-1] ^ 1]))  # restored: same contents, same fingerprint
    assert data_fingerprint(spec) == before
    copy = tmp_path_factory.mktemp("elsewhere")
    shutil.copytree(cifar10_root / "cifar-10-batches-py", copy / "cifar-10-batches-py")
    assert data_fingerprint(DataSpec(name="cifar10", root=str(copy))) == before
    assert data_fingerprint(DataSpec(name="digits")) is None


def test_a_changed_cifar_batch_invalidates_the_cached_result(cifar10_root: Path, tmp_path: Path) -> None:
    """Every data-dependent key hashes the data files: new pixels in a batch file mean a new run, not a stale one."""
    from landscape.config import ModelSpec, PoisonSpec, TrainSpec
    from landscape.experiment import get_training
    from landscape.stages.poison import PoisonStage
    from landscape.stages.train import TrainStage
    from landscape.store import Store

    store, data = Store(tmp_path / "store"), DataSpec(name="cifar10", root=str(cifar10_root))
    model, train = ModelSpec("linear"), TrainSpec(epochs=1, batch_size=20)
    before = get_training(data, model, train, store=store)
    stage = TrainStage.of(data, model, train)
    assert stage.exists(store)
    keys = stage.key(), PoisonStage.of(data, PoisonSpec(method="random")).key()
    batch = cifar10_root / "cifar-10-batches-py" / "data_batch_2"
    content = pickle.loads(batch.read_bytes())
    content[b"data"] = _images(PER_BATCH, seed=99)  # other pixels, same layout, same labels
    _dump(content, batch)
    assert stage.key() != keys[0]  # the run's key follows the file contents
    assert PoisonStage.of(data, PoisonSpec(method="random")).key() != keys[1]  # and so does every other key
    assert not stage.exists(store) and store.exists(TrainStage.folder, keys[0])  # the old run is not served
    after = get_training(data, model, train, store=store)  # recomputed on the new pixels
    assert not np.array_equal(after.history["train_loss"], before.history["train_loss"])
    assert stage.exists(store)
