"""The app's configured user models and data (environment, config file) and uploaded .npz data sets."""

from __future__ import annotations

import io
import json
import pickle
import re

import numpy as np
import pytest

from landscape.config import DataSpec
from landscape.data import load_data
from landscape.errors import DataError
from landscape.userconfig import MAX_UPLOAD_BYTES, UserConfig, keep_upload, user_config
from tests.fixtures import quadrant_images


class Payload:
    """Unpickling this object opens (creates) a file: proof that a loader executed code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """A home without a config file (the default file is read from the home folder)."""
    monkeypatch.setenv("HOME", str(tmp_path))


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_nothing_configured_is_an_empty_config():
    assert user_config({}) == UserConfig()


def test_environment_and_config_file_entries(tmp_path):
    config = tmp_path / "conf" / "byo.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"models": ["mylab.nets:Zoo.small", "tests.fixtures:factory"],
                                  "data": ["folder:photos?size=32", "sets/more.npz", "npz:~/abs.npz"]}))
    env = {"UE_LANDSCAPE_MODELS": " tests.fixtures:factory, mylab.nets:resnet ,",
           "UE_LANDSCAPE_DATA": f"npz:{tmp_path}/a.npz,{tmp_path}/photos,{tmp_path}/b.NPZ",
           "UE_LANDSCAPE_CONFIG": str(config)}
    got = user_config(env)
    assert got.models == ("tests.fixtures:factory", "mylab.nets:resnet", "mylab.nets:Zoo.small")  # no repeats
    assert got.data == (DataSpec("npz", root=f"{tmp_path}/a.npz"), DataSpec("folder", root=f"{tmp_path}/photos"),
                        DataSpec("npz", root=f"{tmp_path}/b.NPZ"),
                        DataSpec("folder", root=str(config.parent / "photos"), resize=32),  # from the file's folder
                        DataSpec("npz", root=str(config.parent / "sets" / "more.npz")),
                        DataSpec("npz", root=str(tmp_path / "abs.npz")))
    default = tmp_path / ".config" / "ue-landscape" / "config.json"
    default.parent.mkdir(parents=True)
    default.write_text(json.dumps({"models": ["a.b:c"]}))
    assert user_config({}).models == ("a.b:c",)  # the default file, read when no variable names one


@pytest.mark.parametrize(("env", "config", "match"), [
    ({"UE_LANDSCAPE_MODELS": "models/net.py:factory"}, None,
     r"UE_LANDSCAPE_MODELS: user model 'models/net.py:factory' must be named package.module:factory"),
    ({"UE_LANDSCAPE_DATA": "digits:/tmp"}, None,
     r"UE_LANDSCAPE_DATA: data set 'digits:/tmp' must be npz:PATH, folder:PATH, folder:PATH\?size=N or a path"),
    ({"UE_LANDSCAPE_DATA": "folder:x?side=3"}, None, r"option 'side=3' .* the one option is size=N"),
    ({}, "{not json", r"cannot be read as JSON"),
    ({}, json.dumps({"model": ["a.b:c"]}), r"has key\(s\) model; accepted: models, data"),
    ({}, json.dumps({"data": "x.npz"}), None),  # one string is read as a comma-separated list, as in the env
    ({}, json.dumps({"models": [3]}), r"models must be a list of strings; got \[3\]"),
    ({}, json.dumps(["a.b:c"]), r"must hold a JSON object"),
])
def test_bad_entries_name_their_source(tmp_path, env, config, match):
    env = dict(env)
    if config is not None:
        (tmp_path / "c.json").write_text(config)
        env["UE_LANDSCAPE_CONFIG"] = str(tmp_path / "c.json")
    if match is None:
        assert user_config(env).data == (DataSpec("npz", root=str(tmp_path / "x.npz")),)
        return
    got = user_config(env)
    assert len(got.problems) == 1 and re.search(match, got.problems[0]), got.problems
    assert not got.models and not got.data


def test_a_named_config_file_must_exist(tmp_path):
    problems = user_config({"UE_LANDSCAPE_CONFIG": str(tmp_path / "nope.json")}).problems
    assert len(problems) == 1 and re.search(r"UE_LANDSCAPE_CONFIG = '.*nope.json' is not a file", problems[0])


def test_one_bad_entry_leaves_out_only_itself(tmp_path):
    """A bad entry (in either variable or the file) or an unreadable file is reported; every good one is kept."""
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"models": ["a.b:c", "x/y.py:f"], "data": ["digits:/tmp", "npz:more.npz"]}))
    env = {"UE_LANDSCAPE_MODELS": "tests.fixtures:factory,models/net.py:factory",
           "UE_LANDSCAPE_DATA": f"npz:,npz:{tmp_path}/a.npz,digits:/tmp", "UE_LANDSCAPE_CONFIG": str(config)}
    got = user_config(env)
    assert got.models == ("tests.fixtures:factory", "a.b:c")
    assert got.data == (DataSpec("npz", root=f"{tmp_path}/a.npz"), DataSpec("npz", root=str(tmp_path / "more.npz")))
    assert [p.split(":")[0] for p in got.problems] == ["UE_LANDSCAPE_MODELS", "UE_LANDSCAPE_DATA", "UE_LANDSCAPE_DATA",
                                                      f"{config} models", f"{config} data"], got.problems
    for entry, problem in zip(["'models/net.py:factory'", "'npz:'", "'digits:/tmp'", "'x/y.py:f'", "'digits:/tmp'"],
                              got.problems, strict=True):
        assert entry in problem, (entry, problem)
    config.write_text("{not json")
    got = user_config(env)
    assert got.models == ("tests.fixtures:factory",) and got.data == (DataSpec("npz", root=f"{tmp_path}/a.npz"),)
    assert "cannot be read as JSON" in got.problems[-1]


def test_an_upload_is_kept_by_content_and_loads_as_on_the_command_line(store):
    x, y = quadrant_images(40)
    content = npz_bytes(x=x, y=y)
    spec = keep_upload(content, store)
    assert spec.name == "npz" and (store.root / "inputs").is_dir()
    assert keep_upload(content, store) == spec and len(list((store.root / "inputs").iterdir())) == 1
    splits = load_data(spec)
    assert splits.image_shape == (1, 8, 8) and len(splits.train) + len(splits.test) == 40
    y2 = y.copy()
    y2[0] = 1
    assert keep_upload(npz_bytes(x=x, y=y2), store).root != spec.root  # one label: another file, other keys


def test_bad_uploads_are_refused_and_not_kept(tmp_path, store):
    x, y = quadrant_images(40)
    marker = tmp_path / "payload-ran"
    evil = npz_bytes(x=x, y=np.array([Payload(str(marker))] * len(y), dtype=object))
    pickle.loads(pickle.dumps(Payload(str(tmp_path / "live"))))
    assert (tmp_path / "live").exists()  # the payload does run when unpickled
    with pytest.raises(DataError, match=r"^mine.npz: array 'y' is an object array"):
        keep_upload(evil, store, name="mine.npz")
    with pytest.raises(DataError, match="not a readable .npz archive"):
        keep_upload(b"not a zip", store)
    with pytest.raises(DataError, match=r"x holds 40 images but y 39 labels"):
        keep_upload(npz_bytes(x=x, y=y[:-1]), store)
    with pytest.raises(DataError, match=rf"over the upload limit of {MAX_UPLOAD_BYTES >> 20} MiB"):
        keep_upload(b"\0" * (MAX_UPLOAD_BYTES + 1), store)
    assert not marker.exists() and not (store.root / "inputs").exists()
