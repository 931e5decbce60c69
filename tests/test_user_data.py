"""User data sets `npz:PATH` and `folder:PATH[?size=N]`: layouts, refusals, poison defaults family, keys."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from landscape.cli import main
from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, TrainSpec
from landscape.data import load_data
from landscape.data.fingerprint import data_fingerprint
from landscape.errors import DataError, SpecError
from landscape.experiment import get_training
from landscape.poisons.base import dataset_family
from landscape.stages.base import resolve_poison
from landscape.stages.train import TrainStage
from landscape.stages.ud import UDStage
from tests.fixtures import quadrant_images

pytestmark = pytest.mark.usefixtures("one_thread")


class Payload:
    """Unpickling this object opens (creates) a file: proof that a loader executed code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return DataSpec.parse(f"npz:{path}")


@pytest.fixture
def images():
    return quadrant_images(120)  # uint8 (120, 8, 8, 1), labels 0..3


# ------------------------------------------------------------------------------------------------------ npz


def test_npz_layouts_and_dtypes_give_the_same_images(tmp_path, images):
    x, y = images  # NHWC uint8
    nhwc = load_data(save_npz(tmp_path / "nhwc.npz", x=x, y=y))
    variants = {"nhw": x[..., 0], "nchw": x.transpose(0, 3, 1, 2), "float": x.astype(np.float32) / 255,
                "float64_nchw": x.transpose(0, 3, 1, 2).astype(np.float64) / 255}
    for name, xv in variants.items():
        splits = load_data(save_npz(tmp_path / f"{name}.npz", x=xv, y=y))
        assert splits.image_shape == (1, 8, 8), name
        torch.testing.assert_close(splits.train.x, nhwc.train.x, rtol=0, atol=1e-7)
        assert torch.equal(splits.test.y, nhwc.test.y)
    assert len(nhwc.train) == 96 and len(nhwc.test) == 24  # seeded stratified 80/20
    assert torch.bincount(nhwc.test.y).tolist() == [6, 6, 6, 6]
    assert float(nhwc.train.x.max()) <= 1 and nhwc.train.x.dtype == torch.float32
    other_seed = load_data(DataSpec.parse(f"npz:{tmp_path / 'nhwc.npz'}", split_seed=1))
    assert not torch.equal(other_seed.test.x, nhwc.test.x)


def test_npz_with_its_own_test_split_and_class_names(tmp_path, images):
    x, y = images
    rgb = np.repeat(x, 3, axis=3)
    spec = save_npz(tmp_path / "d.npz", x=rgb[:100], y=y[:100], x_test=rgb[100:], y_test=y[100:],
                    class_names=np.array(["tl", "tr", "bl", "br"]))
    splits = load_data(spec)
    assert splits.image_shape == (3, 8, 8) and len(splits.train) == 100 and len(splits.test) == 20
    assert splits.train.class_names == ("tl", "tr", "bl", "br")
    torch.testing.assert_close(splits.test.x, torch.from_numpy(rgb[100:].transpose(0, 3, 1, 2) / 255).float())


def test_an_object_array_is_refused_and_its_payload_never_runs(tmp_path, images, store):
    x, y = images
    marker = tmp_path / "payload-ran"
    pickle.loads(pickle.dumps(Payload(str(tmp_path / "payload-is-live"))))  # the payload does write when unpickled
    assert (tmp_path / "payload-is-live").exists()
    spec = save_npz(tmp_path / "evil.npz", x=x, y=np.array([Payload(str(marker))] * len(y), dtype=object))
    with pytest.raises(DataError, match=r"evil.npz: array 'y' is an object array.*would unpickle"):
        load_data(spec)
    assert TrainStage.of(spec, ModelSpec(), TrainSpec(epochs=1)).key()  # the key hashes the bytes only
    with pytest.raises(DataError, match="object array"):
        get_training(spec, ModelSpec(), TrainSpec(epochs=1), store=store)
    assert not marker.exists() and not list(store.root.rglob("meta.json"))


@pytest.mark.parametrize(("arrays", "match"), [
    (lambda x, y: {"x": x[:, :3].reshape(-1, 3, 5, 3)[:40], "y": y[:40]},
     r"\(40, 3, 5, 3\), which reads as NCHW and as NHWC"),
    (lambda x, y: {"x": np.zeros((10, 4, 8, 8), np.uint8), "y": y[:10]},
     r"expected \(N, H, W\), \(N, C, H, W\) or \(N, H, W, C\) with C = 1 or 3"),
    (lambda x, y: {"x": x.astype(np.int64), "y": y},
     r"x has dtype int64; expected uint8 \(0..255\) or float in \[0, 1\]"),
    (lambda x, y: {"x": x.astype(np.float32), "y": y}, r"values span \[.*, 255\].*stored as uint8 or divided by 255"),
    (lambda x, y: {"x": np.full(x.shape, np.nan, np.float32), "y": y}, "NaN or infinite"),
    (lambda x, y: {"x": x, "y": y.astype(np.float32)}, r"y has dtype float32.*integer class indices"),
    (lambda x, y: {"x": x, "y": np.where(y == 2, 5, y)}, r"no image of class\(es\) '2', '4'.*without gaps"),
    (lambda x, y: {"x": x, "y": y[:-1]}, "x holds 120 images but y 119 labels"),
    (lambda x, y: {"x": x, "y": y, "x_tset": x},
     r"holds array\(s\) x_tset; accepted: x, y, x_test, y_test, class_names"),
    (lambda x, y: {"x": x, "y": y, "x_test": x}, "only one of x_test and y_test"),
    (lambda x, y: {"x": x}, "lacks y"),
    (lambda x, y: {"x": x, "y": np.zeros_like(y)}, r"1 class\(es\); a classification data set needs at least 2"),
    (lambda x, y: {"x": x, "y": y, "class_names": np.array(["a", "b"])}, "a label is 3 but there are 2 class names"),
])
def test_bad_npz_files_are_refused_naming_the_value(tmp_path, images, arrays, match):
    with pytest.raises(DataError, match=match):
        load_data(save_npz(tmp_path / "bad.npz", **arrays(*images)))


def test_npz_that_is_not_an_archive(tmp_path):
    (tmp_path / "x.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable .npz archive"):
        load_data(DataSpec.parse(f"npz:{tmp_path / 'x.npz'}"))
    with pytest.raises(DataError, match="is not a file"):
        load_data(DataSpec.parse(f"npz:{tmp_path / 'missing.npz'}"))


def test_user_sets_refuse_a_missing_root_and_the_wrong_kind_of_path(tmp_path):
    (tmp_path / "file.npz").write_bytes(b"")
    for name, kind, usage in (("npz", "file", "npz:PATH"), ("folder", "folder", "folder:PATH")):
        with pytest.raises(DataError, match=f"data set '{name}' needs its {kind}: {usage}"):
            load_data(DataSpec(name=name))
    with pytest.raises(DataError, match=r"is not a file; expected an \.npz file"):
        load_data(DataSpec.parse(f"npz:{tmp_path}"))
    with pytest.raises(DataError, match="is not a folder; expected a folder with one sub-folder"):
        load_data(DataSpec.parse(f"folder:{tmp_path / 'file.npz'}"))


def test_a_single_changed_label_changes_every_key(tmp_path, images):
    x, y = images
    spec = save_npz(tmp_path / "d.npz", x=x, y=y)
    exp = ExperimentSpec(data=spec, poison=PoisonSpec(method="random"))
    before = (data_fingerprint(spec), TrainStage.of(spec, ModelSpec(), TrainSpec()).key(), UDStage.of(exp).key())
    y2 = y.copy()
    y2[7] = (y2[7] + 1) % 4
    save_npz(tmp_path / "d.npz", x=x, y=y2)
    after = (data_fingerprint(spec), TrainStage.of(spec, ModelSpec(), TrainSpec()).key(), UDStage.of(exp).key())
    assert all(a != b for a, b in zip(before, after, strict=True))
    save_npz(tmp_path / "d.npz", x=x, y=y)
    assert data_fingerprint(spec) == before[0]  # the same content, the same key


# -------------------------------------------------------------------------------------------------- folder


def write_folder(root, x, y, *, ext="png", names=("a", "b", "c", "d")):
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / f"{i:03d}.{ext}")
    return DataSpec.parse(f"folder:{root}")


def test_folder_of_grey_pngs_equals_the_same_images_as_npz(tmp_path, images):
    x, y = images
    spec = write_folder(tmp_path / "grey", x, y)
    splits = load_data(spec)
    assert splits.image_shape == (1, 8, 8) and splits.train.class_names == ("a", "b", "c", "d")
    order = np.argsort(y, kind="stable")  # the folder's order: class by class, then by file name
    same = load_data(save_npz(tmp_path / "same.npz", x=x[order], y=y[order]))
    assert torch.equal(splits.train.x, same.train.x) and torch.equal(splits.test.y, same.test.y)


def test_folder_of_colour_jpegs_and_mixed_modes(tmp_path, images):
    x, y = images
    rgb = np.repeat(x, 3, axis=3)
    rgb[..., 0] //= 2
    splits = load_data(write_folder(tmp_path / "rgb", rgb, y, ext="jpg"))
    assert splits.image_shape == (3, 8, 8)
    mixed = tmp_path / "mixed"
    write_folder(mixed, x[:8], y[:8])
    write_folder(mixed, rgb[8:], y[8:], ext="jpeg")  # some grey, some colour: all become RGB
    assert load_data(DataSpec.parse(f"folder:{mixed}")).image_shape == (3, 8, 8)


def test_mixed_sizes_are_refused_unless_resized(tmp_path, images):
    x, y = images
    spec = write_folder(tmp_path / "f", x, y)
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(tmp_path / "f" / "b" / "big.png")
    with pytest.raises(DataError, match=r"images differ in size: .*000.png is 8x8, .*big.png is 10x12.*\?size=N"):
        load_data(spec)
    resized = load_data(DataSpec.parse(f"folder:{tmp_path / 'f'}?size=6"))
    assert resized.image_shape == (1, 6, 6) and len(resized.train) + len(resized.test) == 121
    assert data_fingerprint(spec) == data_fingerprint(spec.replace(resize=6))  # the same files ...
    assert TrainStage.of(spec.replace(resize=6), ModelSpec(), TrainSpec()).key() != \
        TrainStage.of(spec.replace(resize=5), ModelSpec(), TrainSpec()).key()  # ... another size, another key


@pytest.mark.parametrize(("setup", "match"), [
    (lambda root: (root / "a" / "notes.txt").write_text("x"), r"notes.txt is not a PNG/JPEG file name"),
    (lambda root: (root / "a" / "fake.png").write_text("not an image"), r"fake.png cannot be read as a PNG or JPEG"),
    (lambda root: Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a" / "gif.png", format="GIF"),
     r"gif.png is a GIF image; expected PNG or JPEG"),
    (lambda root: Image.fromarray(np.zeros((8, 8), np.uint16)).save(root / "a" / "deep.png"),
     r"deep.png has Pillow mode 'I;16'.*8-bit"),
    (lambda root: (root / "e").mkdir(), r"class folder .*e holds no image"),
    (lambda root: (root / "a" / "sub").mkdir(), r"sub is a folder; a class folder may hold only images"),
])
def test_bad_folders_are_refused_naming_the_file(tmp_path, images, setup, match):
    x, y = images
    spec = write_folder(tmp_path / "f", x, y)
    setup(tmp_path / "f")
    with pytest.raises(DataError, match=match):
        load_data(spec)


def test_folder_files_and_their_classes_enter_the_key(tmp_path, images):
    x, y = images
    spec = write_folder(tmp_path / "f", x, y)
    (tmp_path / "f" / "README.txt").write_text("ignored: not in a class folder")
    (tmp_path / "f" / "a" / ".DS_Store").write_text("ignored: hidden")
    first = data_fingerprint(spec)
    (tmp_path / "f" / "a" / "000.png").rename(tmp_path / "f" / "b" / "000.png")  # one label changes
    assert data_fingerprint(spec) != first
    assert torch.bincount(load_data(spec).train.y).tolist() != [24, 24, 24, 24]


def test_single_class_folder_and_missing_folder(tmp_path, images):
    x, y = images
    with pytest.raises(DataError, match=r"1 class folder\(s\)"):
        load_data(write_folder(tmp_path / "one", x[y == 0], y[y == 0]))
    with pytest.raises(DataError, match="is not a folder"):
        load_data(DataSpec.parse(f"folder:{tmp_path / 'nowhere'}"))


def test_resize_is_for_folders_only(tmp_path, images):
    with pytest.raises(SpecError, match="DataSpec.resize = 8 applies to folder only"):
        load_data(save_npz(tmp_path / "d.npz", x=images[0], y=images[1]).replace(resize=8))


# ---------------------------------------------------------------------------------------- poison defaults


@pytest.mark.parametrize(("channels", "side", "family"), [(1, 8, "digits"), (1, 16, "digits"), (1, 28, "mnist"),
                                                          (3, 8, "cifar"), (3, 32, "cifar")])
def test_poison_defaults_family_follows_the_images(tmp_path, channels, side, family):
    x, y = quadrant_images(40, channels=channels, side=side)
    spec = save_npz(tmp_path / "d.npz", x=x, y=y)
    assert dataset_family(spec) == family


def test_random_poison_on_user_data_takes_its_familys_budget(tmp_path):
    x, y = quadrant_images(40, channels=3)
    spec = save_npz(tmp_path / "d.npz", x=x, y=y)
    assert resolve_poison(PoisonSpec(method="random"), spec).eps == pytest.approx(8 / 255)  # CIFAR's default
    with pytest.raises(SpecError, match="depend on its images; give its DataSpec"):
        dataset_family("npz")


def test_two_channel_images_are_refused(tmp_path):
    x = np.zeros((40, 2, 8, 8), np.float32)
    spec = save_npz(tmp_path / "d.npz", x=x, y=np.arange(40) % 2)
    with pytest.raises(DataError, match=r"C = 1 or 3"):  # no model or poison defaults family would know them
        load_data(spec)


# ------------------------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("kind", ["npz", "folder"])
def test_cli_run_on_user_data_and_a_user_model(tmp_path, capsys, images, kind):
    x, y = images
    spec = save_npz(tmp_path / "d.npz", x=x, y=y) if kind == "npz" else write_folder(tmp_path / "f", x, y)
    common = ["--dataset", spec.text(), "--model", "tests.fixtures:factory", "--epochs", "2", "--method", "random",
              "--json"]
    assert main(["run", *common, "--sal-rounds", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["spec"]["data"]["name"] == kind and out["ud"] is not None and len(out["layers"]) == 5
    assert main(["surface", *common, "--resolution", "5", "--n-eval", "40", "--out", str(tmp_path / "s.html")]) == 0
    shared = json.loads(capsys.readouterr().out)["surfaces"]["shared"]
    assert shared["grid"] == [5, 5] and shared["non_finite"] == 0  # the PCA plane of both runs' trajectories
    layer = "block.branch_b.0.weight"  # the 1x1 projection branch of the residual block
    assert main(["surface", *common, "--layer", layer, "--resolution", "5", "--n-eval", "40",
                 "--out", str(tmp_path / "layer.html")]) == 0
    sliced = json.loads(capsys.readouterr().out)["surfaces"]
    assert set(sliced) == {"clean", "random"}
    assert all(row["grid"] == [5, 1] and row["layers"] == [layer] and row["epoch"] == 2 for row in sliced.values())
    assert main(["curvature", *common, "--n-data", "64", "--min-steps", "5", "--max-steps", "10", "--probes", "2",
                 "--vs-sal"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert set(runs) == {"clean", "random"} and runs["clean"]["layers"] == out["layers"]
    assert np.isfinite(runs["random"]["lambda_max"]).all() and np.asarray(runs["random"]["lambda_max"]).shape == (2, 5)
    assert len(runs["clean"]["spearman_sal_lambda_max"]["rho"]) == 2


def test_images_too_small_for_a_registered_model_are_refused_before_training(tmp_path, capsys):
    """2x2 images: the cnn's pooling cannot take them. One line naming the model and the size, exit 2, nothing
    stored; a model that takes any size trains on them."""
    x, y = quadrant_images(40, side=2)
    np.savez(tmp_path / "tiny.npz", x=x, y=y)
    store = tmp_path / "store"
    args = ["train", "--dataset", f"npz:{tmp_path / 'tiny.npz'}", "--epochs", "1", "--store", str(store)]
    assert main([*args, "--model", "cnn"]) == 2
    err = capsys.readouterr().err
    assert "model 'cnn' cannot take the data's 1x2x2 images" in err and "Traceback" not in err
    assert not any(p.is_file() and not p.name.startswith(".") for p in store.rglob("*"))
    assert main([*args, "--model", "mlp"]) == 0


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_craft_on_user_data(tmp_path, capsys, json_flag):
    """craft on an npz data set (its cost estimate takes the poison defaults from the images, as crafting does)."""
    x, y = quadrant_images(40)
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    code = main(["craft", "--dataset", f"npz:{tmp_path / 'mine.npz'}", "--method", "random", "--store",
                 str(tmp_path / "store"), *json_flag])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    if json_flag:
        assert json.loads(captured.out)["n_poisoned"] == 32  # 40 images, a stratified 80 % for training
    else:
        assert "32 of 32 images poisoned" in captured.out
