"""Exports: NPZ/CSV round trips; VTK XML files checked against the format spec and read back array by array."""

from __future__ import annotations

import base64
import csv
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from landscape import directions as D
from landscape import surface as S
from landscape.errors import SpecError
from landscape.export import (
    export_surface,
    read_npz,
    write_paths_csv,
    write_paths_vtp,
)
from landscape.models import build_model, weight_layers
from landscape.surface_results import Surface

pytestmark = pytest.mark.usefixtures("one_thread")

# VTK XML DataArray types (docs.vtk.org, "XML File Formats") -> numpy little-endian dtypes
VTK_DTYPES = {"Float64": "<f8", "Float32": "<f4", "Int64": "<i8", "Int32": "<i4", "UInt8": "u1"}


def read_vtk(path) -> tuple[ET.Element, dict[str, np.ndarray], np.ndarray]:
    """An independent reader of the files: (piece element, point-data arrays by name, points (n, 3)).

    It checks what the spec requires of a file with inline binary data: the root VTKFile with its type, version
    1.0, byte order and UInt64 headers; one dataset element of the root's type holding one Piece; every
    DataArray base64 of [UInt64 byte count][values], the count equal to the bytes that follow, and the values a
    whole number of tuples of NumberOfComponents.
    """
    root = ET.parse(path).getroot()
    assert root.tag == "VTKFile"
    assert root.attrib["version"] == "1.0" and root.attrib["byte_order"] == "LittleEndian"
    assert root.attrib["header_type"] == "UInt64"
    (dataset,) = list(root)
    assert dataset.tag == root.attrib["type"] in ("StructuredGrid", "PolyData")
    (piece,) = list(dataset)
    assert piece.tag == "Piece"

    def decode(element: ET.Element) -> np.ndarray:
        assert element.tag == "DataArray" and element.attrib["format"] == "binary"
        raw = base64.b64decode(element.text, validate=True)
        count = int(np.frombuffer(raw[:8], dtype="<u8")[0])
        assert count == len(raw) - 8
        values = np.frombuffer(raw[8:], dtype=VTK_DTYPES[element.attrib["type"]])
        comps = int(element.attrib.get("NumberOfComponents", "1"))
        assert len(values) % comps == 0
        return values.reshape(-1, comps) if comps > 1 else values

    point_data = piece.find("PointData")
    arrays = {a.attrib["Name"]: decode(a) for a in point_data.findall("DataArray")}
    (points_array,) = piece.find("Points").findall("DataArray")
    points = decode(points_array)
    assert points.shape[1] == 3
    for name, values in arrays.items():
        assert len(values) == len(points), name
    if "Scalars" in point_data.attrib:
        assert point_data.attrib["Scalars"] in arrays
    lines = piece.find("Lines")
    if lines is not None:
        arrays.update({f"lines/{a.attrib['Name']}": decode(a) for a in lines.findall("DataArray")})
    return piece, arrays, points


@pytest.fixture(scope="module")
def surfaces():
    """A real 2D layer slice with two projected paths, a 1D slice, and a NaN planted in each."""
    from landscape.data import ImageSet

    g = torch.Generator().manual_seed(0)
    images = ImageSet(torch.rand(24, 1, 8, 8, generator=g), torch.arange(24) % 4, ("a", "b", "c", "d"))
    net = build_model("cnn", (1, 8, 8), 4, seed=0)
    plane = D.layer_plane(net.state_dict(), weight_layers(net)[:1], torch.Generator().manual_seed(1), dims=2)
    s2 = S.slice_plane(net, plane, images, np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 3))
    states = [{k: v + 0.01 * i for k, v in net.state_dict().items()} for i in range(3)]
    for label in ("clean", "em"):
        s2.paths[label] = S.project_path(net, plane, states, [0, 1, 2], images)
    s2.loss[0, 0] = np.nan
    s2.finite[0, 0] = False
    line = D.layer_plane(net.state_dict(), weight_layers(net)[:1], torch.Generator().manual_seed(1), dims=1)
    s1 = S.slice_plane(net, line, images, np.linspace(-1, 1, 7))
    s1.loss[3, 0] = np.inf
    s1.finite[3, 0] = False
    return s2, s1


def test_vts_follows_the_spec_and_reads_back(surfaces, tmp_path):
    s2, _ = surfaces
    path = export_surface(s2, tmp_path / "surface.vts")
    piece, arrays, points = read_vtk(path)
    a, b = len(s2.alpha), len(s2.beta)
    grid = ET.parse(path).getroot()[0]
    assert grid.attrib["WholeExtent"] == piece.attrib["Extent"] == f"0 {a - 1} 0 {b - 1} 0 0"
    assert len(points) == a * b
    # VTK point index i + A * j: alpha varies fastest
    aa, bb = np.meshgrid(s2.alpha, s2.beta, indexing="ij")
    np.testing.assert_array_equal(points[:, 0], aa.ravel(order="F"))
    np.testing.assert_array_equal(points[:, 1], bb.ravel(order="F"))
    for name in ("loss", "acc", "loss_se", "acc_se"):
        np.testing.assert_array_equal(arrays[name], getattr(s2, name).ravel(order="F"))  # NaN kept exactly
    np.testing.assert_array_equal(arrays["finite"], s2.finite.ravel(order="F").astype(np.uint8))
    finite = np.isfinite(s2.loss.ravel(order="F"))
    np.testing.assert_array_equal(points[finite, 2], s2.loss.ravel(order="F")[finite])
    assert np.isfinite(points).all() and points[~finite, 2].max() == np.nanmax(s2.loss)


def test_vtp_line_and_paths_follow_the_spec(surfaces, tmp_path):
    s2, s1 = surfaces
    piece, arrays, points = read_vtk(export_surface(s1, tmp_path / "line.vtp"))
    assert piece.attrib["NumberOfPoints"] == str(len(s1.alpha)) and piece.attrib["NumberOfLines"] == "1"
    np.testing.assert_array_equal(points[:, 0], s1.alpha)
    np.testing.assert_array_equal(arrays["loss"], s1.loss[:, 0])
    np.testing.assert_array_equal(arrays["lines/offsets"], [len(s1.alpha)])
    np.testing.assert_array_equal(arrays["lines/connectivity"], np.arange(len(s1.alpha)))
    piece, arrays, points = read_vtk(write_paths_vtp(s2.paths, tmp_path / "paths.vtp"))
    n = [len(p.epochs) for p in s2.paths.values()]
    assert piece.attrib["NumberOfLines"] == "2" and piece.attrib["NumberOfPoints"] == str(sum(n))
    np.testing.assert_array_equal(arrays["lines/offsets"], np.cumsum(n))
    np.testing.assert_array_equal(arrays["model"], np.repeat([0, 1], n))
    clean = s2.paths["clean"]
    np.testing.assert_array_equal(points[: n[0]], np.stack([clean.alpha, clean.beta, clean.plane_loss], 1))
    np.testing.assert_array_equal(arrays["epoch"][: n[0]], clean.epochs)
    np.testing.assert_array_equal(arrays["real_loss"][: n[0]], clean.real_loss)


def test_npz_round_trip_keeps_every_array_and_the_paths(surfaces, tmp_path):
    s2, _ = surfaces
    back = read_npz(export_surface(s2, tmp_path / "surface.npz"))
    for name in Surface.ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(s2, name))
    assert back.kind == "layer" and back.info["sal_ball"] == s2.info["sal_ball"] and list(back.paths) == ["clean", "em"]
    np.testing.assert_array_equal(back.paths["em"].plane_loss, s2.paths["em"].plane_loss)


def test_csv_round_trip_is_exact(surfaces, tmp_path):
    s2, s1 = surfaces
    for s, name in ((s2, "s2.csv"), (s1, "s1.csv")):
        with open(export_surface(s, tmp_path / name)) as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == s.loss.size
        loss = np.array([float(r["loss"]) for r in rows]).reshape(s.loss.shape)
        np.testing.assert_array_equal(loss, s.loss)
        np.testing.assert_array_equal(np.array([float(r["alpha"]) for r in rows]).reshape(s.loss.shape)[:, 0],
                                      s.alpha)
        assert [int(r["finite"]) for r in rows] == s.finite.ravel().astype(int).tolist()
    with open(write_paths_csv(s2.paths, tmp_path / "paths.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["clean"] * 3 + ["em"] * 3
    assert [float(r["residual"]) for r in rows[:3]] == s2.paths["clean"].residual.tolist()


def test_bad_requests_and_no_temporary_files(surfaces, tmp_path):
    s2, s1 = surfaces
    with pytest.raises(SpecError, match="2D surface"):
        export_surface(s1, tmp_path / "x.vts")
    with pytest.raises(SpecError, match="1D slice"):
        export_surface(s2, tmp_path / "x.vtp")
    with pytest.raises(SpecError, match=r"\.npz, \.csv, \.vts, \.vtp"):
        export_surface(s2, tmp_path / "x.h5")
    with pytest.raises(SpecError, match="no paths"):
        write_paths_vtp({}, tmp_path / "p.vtp")
    export_surface(s2, tmp_path / "sub" / "ok.vts")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["ok.vts"]
