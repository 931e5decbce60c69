"""The poisoned training set out of the tool (`landscape.poisons.release`, ``craft --out``) and back in.

Model-free poisons on small splits: digits (values v/16, off the 1/255 grid) and generated 8-bit images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from landscape.cli import main
from landscape.config import DataSpec, PoisonSpec
from landscape.errors import DataError, PathError, SpecError
from landscape.poisons import budget_figures
from landscape.poisons.release import class_folders, target_kind, write
from landscape.stages.base import Context, get_splits
from landscape.stages.poison import PoisonStage
from tests.fixtures import quadrant_images

DIGITS = DataSpec("digits", n_train=200)


def crafted(store, data=DIGITS, method="random", **poison):
    return PoisonStage.of(data, PoisonSpec(method=method, **poison)).get(Context(store, torch.device("cpu")))


def test_float32_re_imports_bit_for_bit_as_a_data_set_and_as_provided_images(tmp_path, store):
    poison, splits = crafted(store), get_splits(DIGITS)
    poisoned = (splits.train.x + poison.delta).clamp(0, 1)
    release = write(tmp_path / "p.npz", poison, splits, "float32")
    with np.load(tmp_path / "p.npz", allow_pickle=False) as arrays:  # no pickles
        assert sorted(arrays) == ["class_names", "x", "x_test", "y", "y_test"] and arrays["x"].dtype == np.float32
    loaded = get_splits(DataSpec.parse(f"npz:{tmp_path / 'p.npz'}"))  # --dataset npz:FILE
    assert torch.equal(loaded.train.x, poisoned) and torch.equal(loaded.train.y, splits.train.y)
    assert torch.equal(loaded.test.x, splits.test.x) and torch.equal(loaded.test.y, splits.test.y)  # clean
    assert loaded.train.class_names == splits.train.class_names
    provided = crafted(store, method="provided", options=(("images", str(tmp_path / "p.npz")),))
    assert torch.equal(provided.apply(splits.train).x, poisoned)  # --method provided --option images=FILE
    assert release.budget == poison.meta["budget"] and release.unpoisoned["n_changed"] == 0
    assert release.to_dict()["kind"] == "npz" and release.n_images == len(splits.train)


def test_uint8_is_on_the_grid_and_its_budget_is_what_the_file_holds(tmp_path, store):
    poison, splits = crafted(store, ratio=0.5), get_splits(DIGITS)
    release = write(tmp_path / "p.npz", poison, splits)  # the default: uint8
    with np.load(tmp_path / "p.npz", allow_pickle=False) as arrays:
        assert arrays["x"].dtype == np.uint8 and arrays["x_test"].dtype == np.uint8
    loaded = get_splits(DataSpec.parse(f"npz:{tmp_path / 'p.npz'}"))
    x = loaded.train.x
    assert torch.equal((x * 255).round() / 255, x)  # on the 1/255 grid
    poisoned = (splits.train.x + poison.delta).clamp(0, 1)
    assert (x - poisoned).abs().max() <= 0.5 / 255 + 1e-7  # rounding moves a value by at most half a step
    mask = poison.mask
    assert release.budget == budget_figures(splits.train.x[mask], x[mask])
    assert release.unpoisoned == budget_figures(splits.train.x[~mask], x[~mask])
    # digits are v/16, off the grid: the unpoisoned images change too, and L∞ can exceed the crafted budget
    assert release.unpoisoned["n_changed"] > 0 and release.budget != poison.meta["budget"]
    assert release.budget["linf"] <= poison.meta["budget"]["linf"] + 0.5 / 255 + 1e-7


def test_uint8_of_8_bit_images_stays_within_an_linf_budget_of_k_over_255(tmp_path, store):
    x, y = quadrant_images(60, channels=3)
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    data = DataSpec.parse(f"npz:{tmp_path / 'mine.npz'}")
    poison = crafted(store, data)
    assert poison.meta["norm"] == "linf" and round(poison.meta["eps"] * 255, 6) == 8
    release = write(tmp_path / "p.npz", poison, get_splits(data))
    assert release.budget["linf"] <= 8 / 255 + 1e-7 and release.unpoisoned["n_changed"] == 0


def test_folder_export_reads_back_through_the_folder_loader(tmp_path, store):
    poison, splits = crafted(store, method="ops"), get_splits(DIGITS)
    release = write(tmp_path / "pngs", poison, splits)
    assert release.kind == "folder" and release.dtype == "uint8"
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == list(splits.train.class_names)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    loaded = get_splits(DataSpec.parse(f"folder:{tmp_path / 'pngs'}"))  # no test folder: an 80/20 split of them
    assert loaded.train.class_names == splits.train.class_names
    exported = (((splits.train.x + poison.delta).clamp(0, 1) * 255).round() / 255)

    def rows(x, y):
        return sorted((int(label), image.numpy().tobytes()) for image, label in zip(x, y, strict=True))

    assert rows(torch.cat([loaded.train.x, loaded.test.x]), torch.cat([loaded.train.y, loaded.test.y])) == \
        rows(exported, splits.train.y)
    npz = write(tmp_path / "p.npz", poison, splits)  # the same 8-bit images as the .npz
    assert npz.budget == release.budget
    with pytest.raises(PathError, match="not empty.*new or empty folder"):
        write(tmp_path / "pngs", poison, splits)


def test_colour_folder_and_class_names_that_would_not_sort_in_label_order(tmp_path, store):
    x, y = quadrant_images(40, channels=3)
    np.savez(tmp_path / "mine.npz", x=x, y=y, class_names=np.array(["zebra", "ant", "a/b", ".hidden"]))
    data = DataSpec.parse(f"npz:{tmp_path / 'mine.npz'}")
    write(tmp_path / "pngs", crafted(store, data), get_splits(data))
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["0-zebra", "1-ant", "2-a_b", "3-hidden"]
    loaded = get_splits(DataSpec.parse(f"folder:{tmp_path / 'pngs'}"))
    assert loaded.image_shape == (3, 8, 8) and torch.equal(torch.bincount(torch.cat([loaded.train.y, loaded.test.y])),
                                                         torch.bincount(get_splits(data).train.y))
    assert class_folders(tuple(str(k) for k in range(11)))[10] == "10-10"  # "10" sorts before "2"
    assert class_folders(("cat", "dog")) == ["cat", "dog"]


def test_a_failed_folder_export_leaves_nothing(tmp_path, store, monkeypatch):
    from PIL import Image

    calls = []

    def fail(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    original = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(PathError, match="No space left"):
        write(tmp_path / "pngs", crafted(store), get_splits(DIGITS))
    assert list(tmp_path.iterdir()) == [tmp_path / "store"]
    calls.clear()
    with pytest.raises(PathError, match="No space left"):  # nor the folders it made to hold the export
        write(tmp_path / "new" / "deeper" / "pngs", crafted(store), get_splits(DIGITS))
    assert list(tmp_path.iterdir()) == [tmp_path / "store"]


@pytest.mark.parametrize("out, extra, match", [
    ("p.png", [], "suffix '.png' is neither .npz nor a folder"),
    ("pngs", ["--out-dtype", "float32"], "8-bit; dtype 'float32' needs an .npz"),
    ("full", [], "not empty"),
    (None, ["--out-dtype", "float32"], "--out-dtype: not used without --out"),
])
def test_cli_refuses_a_bad_out_before_crafting(tmp_path, capsys, out, extra, match):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "README").write_text("mine")
    store = tmp_path / "store"
    flags = [] if out is None else ["--out", str(tmp_path / out)]
    assert main(["craft", "--dataset", "digits", "--n-train", "200", "--method", "random", "--store", str(store),
                 *flags, *extra]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not store.exists()  # nothing crafted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_cli_out_dtype_choices(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["craft", "--out", str(tmp_path / "p.npz"), "--out-dtype", "int8", "--store", str(tmp_path / "s")])
    assert "invalid choice: 'int8' (choose from 'uint8', 'float32')" in capsys.readouterr().err


def test_cli_out_replaces_an_existing_file_atomically_and_reports_what_it_wrote(tmp_path, capsys):
    out = tmp_path / "p.npz"
    out.write_bytes(b"an older release")
    common = ["craft", "--dataset", "digits", "--n-train", "200", "--method", "random", "--store",
              str(tmp_path / "store"), "--out", str(out)]
    assert main(common) == 0
    text = capsys.readouterr().out
    assert f"wrote {out} (200 training images, uint8" in text and "as written: L∞" in text
    assert "rounding also changed" not in text  # every image is poisoned (ratio 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npz", "store"]  # no temporary file left
    with np.load(out, allow_pickle=False) as arrays:
        assert arrays["x"].dtype == np.uint8 and len(arrays["x"]) == 200
    assert main([*common, "--out-dtype", "float32", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["out"]["path"] == str(out) and summary["out"]["dtype"] == "float32"
    assert summary["out"]["budget"] == summary["budget"]  # float32: exactly what was crafted
    assert main(["train", "--dataset", f"npz:{out}", "--epochs", "1", "--store", str(tmp_path / "store")]) == 0
    assert main(["evaluate-ue", "--dataset", "digits", "--n-train", "200", "--method", "provided", "--option",
                 f"images={out}", "--epochs", "1", "--store", str(tmp_path / "store")]) == 0
    assert "provided on digits (no budget, ratio 1.0)" in capsys.readouterr().out


def test_target_kind(tmp_path):
    assert target_kind(tmp_path / "a.npz") == "npz" and target_kind(tmp_path / "new") == "folder"
    assert target_kind(tmp_path) == "folder"  # an existing empty folder
    with pytest.raises(SpecError, match="'int8' is not one of uint8, float32"):
        target_kind(tmp_path / "a.npz", "int8")
    (tmp_path / "file").write_text("")
    with pytest.raises(PathError, match="is a file"):
        target_kind(tmp_path / "file")


def test_cli_craft_provided_measures_exported_images_as_the_original_craft(tmp_path, capsys):
    """`craft --method provided` on a float32 `craft --out` reports the crafted budget figures (nothing crafted)."""
    out, store = tmp_path / "p.npz", str(tmp_path / "store")
    data = ["--dataset", "digits", "--n-train", "200", "--store", store]
    assert main(["craft", *data, "--method", "random", "--out", str(out), "--out-dtype", "float32", "--json"]) == 0
    original = json.loads(capsys.readouterr().out)
    provided = ["craft", *data, "--method", "provided", "--option", f"images={out}"]
    assert main([*provided, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["budget"] == original["budget"] and summary["n_poisoned"] == 200
    assert summary["method"] == "provided" and summary["eps"] is None and summary["eps_is_default"] is False
    assert main(provided) == 0
    text = capsys.readouterr().out
    assert f"method provided ({out}, no budget set), 200 of 200 images changed" in text
    assert "L∞ " in text and "PSNR " in text and "(from the store)" in text


def test_cli_craft_provided_refuses_a_missing_or_mismatched_file_as_run_does(tmp_path, capsys):
    store = tmp_path / "store"
    np.savez(tmp_path / "short.npz", x=np.zeros((10, 1, 8, 8), np.float32))
    for name, message in (("none.npz", "does not exist; expected an .npz holding x"),
                          ("short.npz", "holds images (10, 1, 8, 8) (N, C, H, W) but the training split of 'digits'")):
        for command in ("craft", "run", "evaluate-ue"):  # run trained (and stored) the clean run before refusing
            training = ["--epochs", "1", "--workers", "1"][:2 if command == "evaluate-ue" else 4]
            assert main([command, "--dataset", "digits", "--n-train", "200", "--method", "provided", "--option",
                         f"images={tmp_path / name}", "--store", str(store), *(training * (command != "craft"))
                         ]) == 2
            err = capsys.readouterr().err
            assert message in err and "Traceback" not in err, (command, err)
            assert not store.exists(), (command, sorted(store.rglob("*")))
    assert main(["craft", "--method", "provided", "--store", str(store)]) == 2
    assert "poison 'provided' takes one option, images=PATH" in capsys.readouterr().err


def test_provided_refuses_an_eps_or_a_ratio_and_its_key_follows_the_file_only(tmp_path, capsys):
    """`--eps` and `--ratio` were ignored silently (the file's images are used as they are), and `--poison-seed`
    gave the same file another key (a second entry, recomputed): refused, and normalised, before any work."""
    out, store = tmp_path / "p.npz", tmp_path / "store"
    data = ["--dataset", "digits", "--n-train", "100", "--store", str(store)]
    assert main(["craft", *data, "--method", "random", "--out", str(out), "--out-dtype", "float32"]) == 0
    capsys.readouterr()
    provided = ["--method", "provided", "--option", f"images={out}"]
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    for command in ("craft", "run", "evaluate-ue"):
        for given, message in ((["--eps", "8/255"], "PoisonSpec.eps = 0.0313725 (the CLI's --eps) does not apply"),
                               (["--ratio", "0.5"], "PoisonSpec.ratio = 0.5 (the CLI's --ratio) does not apply")):
            assert main([command, *data, *provided, *given, *(["--epochs", "1"] * (command != "craft"))]) == 2
            err = capsys.readouterr().err
            assert message in err and "the file's images are used as they are" in err, (command, err)
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before  # nothing trained or stored
    keys = set()
    for seed in ("0", "5"):
        assert main(["craft", *data, *provided, "--poison-seed", seed, "--json"]) == 0
        keys.add(json.loads(capsys.readouterr().out)["store_key"])
    assert len(keys) == 1  # one entry for one file
    spec = PoisonStage.of(DataSpec("digits", n_train=100), PoisonSpec("provided", seed=3,
                                                                      options=(("images", str(out)),))).poison
    assert spec.seed == 0 and spec.eps is None and spec.ratio == 1.0


def test_run_seeds_with_provided_images_shift_training_only(tmp_path, capsys):
    """`run --seeds N --method provided`: the seed shift of the poison (`seed_specs`) is no eps or ratio: it runs,
    on one poison entry."""
    out, store = tmp_path / "p.npz", tmp_path / "store"
    data = ["--dataset", "digits", "--n-train", "100", "--n-test", "50", "--store", str(store)]
    assert main(["craft", *data, "--method", "random", "--out", str(out), "--out-dtype", "float32"]) == 0
    capsys.readouterr()
    assert main(["run", *data, "--method", "provided", "--option", f"images={out}", "--seeds", "3", "--epochs", "1",
                 "--sal-rounds", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_seeds"] == 3 and summary["seeds"] == [0, 1, 2]
    assert len(list((store / "poison").glob("*/meta.json"))) == 2  # the random craft's and the provided one


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NHW"])
def test_provided_images_are_checked_against_the_split_from_the_header_alone(tmp_path, layout, monkeypatch):
    """Resolving provided images for a data set compares the header's (N, C, H, W) with the training split's, in
    every layout the format accepts, and reads no array for it."""
    from landscape.data import npz

    nchw = np.zeros((200, 1, 8, 8), np.float32)
    x = {"NCHW": nchw, "NHWC": nchw.transpose(0, 2, 3, 1), "NHW": nchw[:, 0]}[layout]
    np.savez(tmp_path / "right.npz", x=x)
    np.savez(tmp_path / "wrong.npz", x=np.take(x, range(7), axis=2 if layout == "NCHW" else 1))  # 7 rows
    monkeypatch.setattr(npz, "_arrays", lambda *a: pytest.fail("an array was read to check a shape"))
    assert npz.images_shape(tmp_path / "right.npz") == (200, 1, 8, 8)
    stage = PoisonStage.of(DIGITS, PoisonSpec("provided", options=(("images", str(tmp_path / "right.npz")),)))
    assert dict(stage.poison.options)["sha256"]
    with pytest.raises(DataError, match=r"wrong.npz holds images \(200, 1, 7, 8\) \(N, C, H, W\) but the training "
                                        r"split of 'digits' is \(200, 1, 8, 8\)"):
        PoisonStage.of(DIGITS, PoisonSpec("provided", options=(("images", str(tmp_path / "wrong.npz")),)))
