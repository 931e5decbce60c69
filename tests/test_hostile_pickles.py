"""Hostile pickles (CIFAR batches, state dicts) and JSON beside them: crashes, exhaustion, recursion refused clearly.

Every file here is a few kilobytes, written opcode by opcode where `pickle` would never write it so.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.data import cifar
from landscape.errors import DataError
from landscape.pickles import MAX_DEPTH, check_nesting
from landscape.weights import load_into, read_weights

CIFAR10 = cifar._LAYOUTS["cifar10"]


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def _ints(values: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(b"J" + struct.pack("<i", v) for v in values) + b"t"


def _strided(shape: tuple[int, ...], dtype: str) -> bytes:
    """Opcodes of ``numpy.ndarray(shape, dtype, buffer=8 zero bytes, offset=0, strides=0...)``: tiny, huge shape."""
    return (_global("numpy", "ndarray") + b"(" + _ints(shape) + _global("numpy", "dtype") + b"(X"
            + struct.pack("<I", len(dtype)) + dtype.encode() + b"I00\nI01\ntR" + b"C\x08" + b"\0" * 8 + b"J\0\0\0\0"
            + _ints((0,) * len(shape)) + b"tR")


def _chain(depth: int, memo_from: int = 1000) -> tuple[bytes, bytes]:
    """(opcodes building `depth` + 1 lists, each appended into the one before, by reference; a GET of the first).

    Every list is built flat and nested afterwards, so the opcodes nest nothing: only the objects do.
    """
    def put(i: int) -> bytes:
        return b"r" + struct.pack("<I", i + memo_from)

    def get(i: int) -> bytes:
        return b"j" + struct.pack("<I", i + memo_from)

    lists = b"".join(b"]" + put(i) + b"0" for i in range(depth + 1))
    return lists + b"".join(get(i) + get(i + 1) + b"a0" for i in range(depth)), get(0)


def _with_chain(obj: dict[bytes, object], sentinel: bytes, depth: int) -> bytes:
    """`obj` pickled (protocol 3), the bytes value `sentinel` replaced by a list nested `depth` deep."""
    body, first = _chain(depth)
    data = pickle.dumps(obj, protocol=3)
    at = data.index(b"C" + bytes([len(sentinel)]) + sentinel)
    data = data[:at] + first + data[at + 2 + len(sentinel):]
    return data[:2] + body + data[2:]


def _deep_tuple_key(depth: int) -> bytes:
    return b"\x80\x02}" + b")" + b"\x85" * depth + b"K\x01s."


# ---------------------------------------------------------------------------------------------- nesting


def test_nesting_is_measured_from_the_opcodes() -> None:
    ok = pickle.dumps({"a": [(1, {"b": np.zeros(3)})], "c": list(range(2000))}, protocol=2)
    check_nesting(io.BytesIO(ok), "ok")
    for protocol in range(6):
        nested: object = 0
        for _ in range(MAX_DEPTH + 5):
            nested = [nested]
        with pytest.raises(DataError, match=f"more than {MAX_DEPTH} levels deep"):
            check_nesting(io.BytesIO(pickle.dumps(nested, protocol=protocol)), "deep")
    check_nesting(io.BytesIO(b"\x80\x02}garbage"), "malformed: left to the unpickler")


def test_cifar_refuses_a_deeply_nested_dict_key(tmp_path: Path) -> None:
    # unpickled, its key is hashed recursively in C: a million levels crash the interpreter (segmentation fault)
    path = tmp_path / "data_batch_1"
    path.write_bytes(_deep_tuple_key(5000))
    with pytest.raises(DataError, match=r"data_batch_1: refused, its objects nest more than 100 levels"):
        cifar._read_pickle(path, CIFAR10)


def test_cifar_names_nested_by_reference_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "batches.meta"
    names = [f"c{i}".encode() for i in range(9)] + [b"SENTINEL"]
    path.write_bytes(_with_chain({b"label_names": names}, b"SENTINEL", 3000))  # str() of it recursed without end
    with pytest.raises(DataError, match="must list class names as strings, found a list"):
        cifar._read_names(path, CIFAR10)


def test_cifar_labels_nested_by_reference_are_named_briefly(tmp_path: Path) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(_with_chain({b"data": np.zeros((1, 3072), np.uint8), b"labels": [b"SENTINEL"]}, b"SENTINEL",
                                 3000))  # repr() of it recursed without end
    with pytest.raises(DataError, match=r"integer class indices; found \[\[\[.*\]\]\] \(list\)"):
        cifar._read_batch(path, CIFAR10)


# ---------------------------------------------------------------------------------------------- sizes


def test_cifar_data_larger_than_its_file_is_refused(tmp_path: Path) -> None:
    # 200 bytes claiming 10^6 images (3 GB): a zero-stride view, copied to float32 (12 GB) by the old loader
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"\x80\x02}(C\x04data" + _strided((10**6, 3072), "u1") + b"C\x06labels"
                     + _strided((10**6,), "i8") + b"u.")
    with pytest.raises(DataError, match=r"claims 1,000,000 images \(3,072,000,000 bytes\) but the file holds \d+ "
                                        r"bytes"):
        cifar._read_batch(path, CIFAR10)


def test_cifar_labels_are_checked_before_they_are_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data_batch_1"
    image = pickle.dumps(np.zeros((1, 3072), np.uint8), protocol=3)[2:-1]
    path.write_bytes(b"\x80\x03}(C\x04data" + image + b"C\x06labels" + _strided((10**6,), "i8") + b"u.")
    monkeypatch.setattr(cifar, "_integer_labels", lambda *a: pytest.fail("labels copied before their shape check"))
    with pytest.raises(DataError, match=r"1 images but labels of shape \(1000000,\)"):
        cifar._read_batch(path, CIFAR10)


# ---------------------------------------------------------------------------------------------- state dicts


def _checkpoint(path: Path, data_pkl: bytes | None = None) -> Path:
    """A real `torch.save` zip checkpoint of one tensor, its data.pkl replaced by `data_pkl` if given."""
    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(2)}, buf)
    source = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w") as out:
        for name in source.namelist():
            out.writestr(name, data_pkl if data_pkl is not None and name.endswith("data.pkl") else source.read(name))
    return path


def test_state_dict_with_a_deeply_nested_key_is_refused(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "deep.pt", _deep_tuple_key(5000))
    with pytest.raises(DataError, match=r"data.pkl: refused, its objects nest more than 100 levels"):
        read_weights(path)
    assert set(read_weights(_checkpoint(tmp_path / "ok.pt"))) == {"weight"}


def test_legacy_state_dict_with_a_deeply_nested_key_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(2)}, buf, _use_new_zipfile_serialization=False)
    (tmp_path / "ok.pt").write_bytes(buf.getvalue())
    assert set(read_weights(tmp_path / "ok.pt")) == {"weight"}
    head = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    (tmp_path / "deep.pt").write_bytes(head + _deep_tuple_key(5000))
    with pytest.raises(DataError, match="deep.pt: refused, its objects nest more than 100 levels"):
        read_weights(tmp_path / "deep.pt")


def test_complex_weights_for_real_parameters_are_refused() -> None:
    net = torch.nn.Linear(2, 2)
    state = {**net.state_dict(), "weight": torch.full((2, 2), complex(float("nan"), 1.0))}
    with pytest.raises(Exception, match=r"weight torch.complex64 \(model torch.float32\)"):
        load_into(net, state, "w.pt")  # cast to real, its NaN would have passed the finite check


# ---------------------------------------------------------------------------------------------- JSON beside them


@pytest.mark.parametrize("metadata", ["[" * 100_000 + "]" * 100_000, "[1]"], ids=["deep", "not-an-object"])
def test_safetensors_metadata_that_is_no_record_is_not_checked(tmp_path: Path, metadata: str) -> None:
    from safetensors.torch import save_file

    from landscape.commands.weights import check_recorded_data
    from landscape.config import DataSpec

    path = tmp_path / "w.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path), metadata={"ue_landscape": metadata})
    check_recorded_data(str(path), DataSpec("digits"))  # raised RecursionError / AttributeError (tracebacks)


def test_a_config_file_nested_too_deeply_is_a_listed_problem(tmp_path: Path) -> None:
    from landscape.userconfig import user_config

    config = tmp_path / "config.json"
    config.write_text('{"data": ' + "[" * 100_000 + "]" * 100_000 + "}")  # the app's sidebar raised RecursionError
    got = user_config({"UE_LANDSCAPE_CONFIG": str(config)})
    assert got.data == () and "cannot be read as JSON" in got.problems[0]
