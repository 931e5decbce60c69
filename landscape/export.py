"""Exports of surfaces, slices and paths: NPZ, CSV and VTK XML (`.vts` structured grid, `.vtp` poly lines).

Curvature tables (`landscape.curvature.CurvatureTrace` by run) go to CSV (one row per run, epoch and layer) or NPZ
(`write_curvature`, `read_curvature`); a result's table rows (e.g. `ExperimentResult.sal_table`) to CSV
(`write_table_csv`).

* NPZ: every array of `Surface.to_store` and its metadata as a JSON string; `read_npz` gives the `Surface` back
  (loaded with `allow_pickle=False`).
* CSV: one row per grid point (alpha, beta, loss, acc, loss_se, acc_se, finite); paths: one row per checkpoint.
* VTK: the XML formats of VTK (https://docs.vtk.org/en/latest/vtk_file_formats/vtkxml_file_format.html), which
  ParaView and VisIt open. A 2D surface is a `StructuredGrid` (`.vts`) of A x B points (alpha, beta, height),
  alpha varying fastest, with the loss, accuracy, standard errors and a `finite` flag as point data; a 1D slice
  and the projected training paths are `PolyData` (`.vtp`) poly lines. The height is the loss; a point whose
  loss is not finite is drawn at the largest finite loss and flagged `finite = 0` (ParaView: Threshold on it).
  Arrays are written in VTK's inline "binary" encoding: base64 of a UInt64 byte count followed by the
  little-endian values (`header_type="UInt64"`, file version 1.0), which keeps NaN exact where ASCII
  readers disagree on how to spell it.

The writer is our own (about 80 lines on `xml.etree`): the formats are small and fully specified, and the
well-kept alternatives are either the 100 MB `vtk` package or `pyevtk`, which writes raw appended data (not
well-formed XML, so no standard parser can check it). The tests check the files against the format spec
(element tree, extents, counts, the binary header) and read every array back.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from landscape.curvature import WHOLE, CurvatureTrace
from landscape.errors import ShapeError, SpecError
from landscape.files import atomic_write
from landscape.surface_results import ProjectedPath, Surface

FORMATS = (".npz", ".csv", ".vts", ".vtp")
_VTK_TYPES = {np.dtype(np.float64): "Float64", np.dtype(np.float32): "Float32", np.dtype(np.int64): "Int64",
              np.dtype(np.int32): "Int32", np.dtype(np.uint8): "UInt8"}
_GRID_FIELDS = ("loss", "acc", "loss_se", "acc_se")


# --------------------------------------------------------------------------------------------------
# NPZ and CSV


def write_npz(surface: Surface, path: str | Path) -> Path:
    """Every array of the surface and its metadata (JSON text under "meta") in one `.npz`."""
    meta, arrays = surface.to_store()
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write(Path(path), buf.getvalue())
    return Path(path)


def read_npz(path: str | Path) -> Surface:
    """The `Surface` written by `write_npz` (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != "meta"}
        meta = json.loads(str(f["meta"]))
    return Surface.from_store(meta, arrays)


def _csv_text(header: list[str], rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def _num(v: float) -> str:
    return repr(float(v))  # shortest exact round trip; "nan" / "inf" for non-finite values


def _cell(v: object) -> object:
    """A CSV cell: a float exactly (`_num`), a boolean as 1/0, None as an empty cell, anything else as it is."""
    return "" if v is None else int(v) if isinstance(v, bool) else _num(v) if isinstance(v, float) else v


def write_table_csv(rows: Sequence[Mapping[str, object]], path: str | Path) -> Path:
    """Rows of a result's table (dicts with the same keys, e.g. `ExperimentResult.sal_table`) as CSV.

    The header is the first row's keys; floats are written exactly (``nan`` where not finite), booleans as 1/0
    and None as an empty cell.
    """
    header = list(rows[0]) if rows else []
    atomic_write(Path(path), _csv_text(header, [[_cell(row[k]) for k in header] for row in rows]))
    return Path(path)


def write_csv(surface: Surface, path: str | Path) -> Path:
    """One row per grid point: alpha, beta, loss, acc, loss_se, acc_se, finite (1/0); exact float round trip."""
    rows = [[_num(a), _num(b), *(_num(getattr(surface, k)[i, j]) for k in _GRID_FIELDS), int(surface.finite[i, j])]
            for i, a in enumerate(surface.alpha) for j, b in enumerate(surface.beta)]
    atomic_write(Path(path), _csv_text(["alpha", "beta", *_GRID_FIELDS, "finite"], rows))
    return Path(path)


def write_paths_csv(paths: Mapping[str, ProjectedPath], path: str | Path) -> Path:
    """One row per checkpoint of every projected path: the model label, then every `ProjectedPath` field."""
    rows = [[label, *(_num(getattr(p, k)[t]) if k != "epochs" else int(p.epochs[t]) for k in ProjectedPath.FIELDS)]
            for label, p in paths.items() for t in range(len(p.epochs))]
    atomic_write(Path(path), _csv_text(["model", *ProjectedPath.FIELDS], rows))
    return Path(path)


# --------------------------------------------------------------------------------------------------
# VTK XML


def _data_array(parent: ET.Element, values: np.ndarray, name: str | None = None, components: int = 1) -> None:
    values = np.ascontiguousarray(values)
    if values.dtype not in _VTK_TYPES:
        raise ShapeError(f"no VTK type for dtype {values.dtype}; use float64, float32, int64, int32 or uint8")
    attrs = {"type": _VTK_TYPES[values.dtype], "NumberOfComponents": str(components), "format": "binary"}
    if name is not None:
        attrs = {"Name": name, **attrs}
    raw = values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()
    element = ET.SubElement(parent, "DataArray", attrs)
    element.text = base64.b64encode(np.uint64(len(raw)).tobytes() + raw).decode("ascii")


def _vtk_file(kind: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element("VTKFile", {"type": kind, "version": "1.0", "byte_order": "LittleEndian",
                                  "header_type": "UInt64"})
    return root, ET.SubElement(root, kind)


def _point_data(piece: ET.Element, fields: Mapping[str, np.ndarray], scalars: str | None) -> None:
    pd = ET.SubElement(piece, "PointData", {"Scalars": scalars} if scalars else {})
    for name, values in fields.items():
        _data_array(pd, values, name)


def _write_xml(root: ET.Element, path: Path) -> Path:
    ET.indent(root)
    atomic_write(path, b'<?xml version="1.0"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n")
    return path


def _heights(loss: np.ndarray) -> np.ndarray:
    finite = np.isfinite(loss)
    wall = float(loss[finite].max()) if finite.any() else 0.0
    return np.where(finite, loss, wall)


def write_vts(surface: Surface, path: str | Path) -> Path:
    """A 2D surface as a VTK `StructuredGrid`: points (alpha, beta, loss), the grid's arrays as point data."""
    if surface.ndim != 2 or len(surface.beta) < 2:
        raise SpecError("a .vts structured grid needs a 2D surface; write a 1D slice as .vtp, .csv or .npz")
    a, b = len(surface.alpha), len(surface.beta)
    aa, bb = np.meshgrid(surface.alpha, surface.beta, indexing="ij")  # (A, B)

    def vtk_order(v: np.ndarray) -> np.ndarray:  # VTK point index i + A * j: alpha fastest
        return np.asarray(v).ravel(order="F")

    points = np.stack([vtk_order(aa), vtk_order(bb), vtk_order(_heights(surface.loss))], axis=1).astype(np.float64)
    root, grid = _vtk_file("StructuredGrid")
    extent = f"0 {a - 1} 0 {b - 1} 0 0"
    grid.set("WholeExtent", extent)
    piece = ET.SubElement(grid, "Piece", {"Extent": extent})
    fields = {k: vtk_order(getattr(surface, k)).astype(np.float64) for k in _GRID_FIELDS}
    fields["finite"] = vtk_order(surface.finite).astype(np.uint8)
    _point_data(piece, fields, "loss")
    _data_array(ET.SubElement(piece, "Points"), points, components=3)
    return _write_xml(root, Path(path))


def _write_lines(lines: list[tuple[np.ndarray, dict[str, np.ndarray]]], path: Path, scalars: str) -> Path:
    """Poly lines as VTK `PolyData`: each line a (n, 3) point array with its point data."""
    points = np.concatenate([p for p, _ in lines]).astype(np.float64)
    sizes = [len(p) for p, _ in lines]
    root, poly = _vtk_file("PolyData")
    piece = ET.SubElement(poly, "Piece", {"NumberOfPoints": str(len(points)), "NumberOfVerts": "0",
                                          "NumberOfLines": str(len(lines)), "NumberOfStrips": "0",
                                          "NumberOfPolys": "0"})
    names = list(lines[0][1])
    _point_data(piece, {k: np.concatenate([f[k] for _, f in lines]) for k in names}, scalars)
    _data_array(ET.SubElement(piece, "Points"), points, components=3)
    cells = ET.SubElement(piece, "Lines")
    _data_array(cells, np.arange(len(points), dtype=np.int64), "connectivity")
    _data_array(cells, np.cumsum(sizes).astype(np.int64), "offsets")
    return _write_xml(root, path)


def write_vtp(surface: Surface, path: str | Path) -> Path:
    """A 1D slice as one VTK poly line through (alpha, 0, loss), with the slice's arrays as point data."""
    if surface.ndim != 1:
        raise SpecError("a .vtp line holds a 1D slice; write a 2D surface as .vts (and its paths with write_paths_vtp)")
    fields = {k: getattr(surface, k)[:, 0].astype(np.float64) for k in _GRID_FIELDS}
    fields["finite"] = surface.finite[:, 0].astype(np.uint8)
    pts = np.stack([surface.alpha, np.zeros(len(surface.alpha)), _heights(surface.loss[:, 0])], axis=1)
    return _write_lines([(pts, fields)], Path(path), "loss")


def write_paths_vtp(paths: Mapping[str, ProjectedPath], path: str | Path) -> Path:
    """Projected training paths as VTK poly lines through (alpha, beta, loss on the plane), one line per model.

    Point data: epoch, the model's index in `paths` ("model"; the labels are in the order given), the
    checkpoint's real loss and the loss at its projection, and the off-plane residual.
    """
    if not paths:
        raise SpecError("no paths to write: the surface has no projected trajectories")
    lines = []
    for index, p in enumerate(paths.values()):
        pts = np.stack([p.alpha, p.beta, _heights(np.asarray(p.plane_loss, dtype=np.float64))], axis=1)
        lines.append((pts, {"epoch": np.asarray(p.epochs, dtype=np.int64),
                            "model": np.full(len(p.epochs), index, dtype=np.int64),
                            "real_loss": np.asarray(p.real_loss, dtype=np.float64),
                            "plane_loss": np.asarray(p.plane_loss, dtype=np.float64),
                            "residual": np.asarray(p.residual, dtype=np.float64)}))
    return _write_lines(lines, Path(path), "plane_loss")


def export_surface(surface: Surface, path: str | Path) -> Path:
    """Write `surface` in the format its suffix names: .npz, .csv, .vts (2D) or .vtp (1D)."""
    path = Path(path)
    writers = {".npz": write_npz, ".csv": write_csv, ".vts": write_vts, ".vtp": write_vtp}
    if path.suffix not in writers:
        raise SpecError(f"cannot export to {path.name!r}: the suffix must be one of {', '.join(FORMATS)}")
    return writers[path.suffix](surface, path)


# --------------------------------------------------------------------------------------------------
# curvature tables

CURVATURE_FORMATS = (".npz", ".csv")


def curvature_rows(traces: Mapping[str, CurvatureTrace]) -> tuple[list[str], list[list[object]]]:
    """(header, rows): one row per run, measured epoch and block (every layer, then the whole model if measured).

    Columns: run, epoch, layer, size, lambda_max, eig_1..eig_k (the top-k Ritz values; None past a block's
    dimension), trace, trace_se, trace_krylov, steps, converged, hvps, seconds; numbers as Python numbers.
    """
    k = max((len(b.eigenvalues) for t in traces.values() for s in t.states for b in s.layers.values()), default=1)
    header = ["run", "epoch", "layer", "size", "lambda_max", *(f"eig_{i + 1}" for i in range(k)), "trace",
              "trace_se", "trace_krylov", "steps", "converged", "hvps", "seconds"]
    rows: list[list[object]] = []
    for label, trace in traces.items():
        for epoch, state in zip(trace.epochs, trace.states, strict=True):
            blocks = {**state.layers, **({WHOLE: state.whole} if state.whole is not None else {})}
            for name, b in blocks.items():
                eig = [float(v) for v in b.eigenvalues] + [None] * (k - len(b.eigenvalues))
                rows.append([label, int(epoch), name, b.size, b.lambda_max, *eig, b.trace, b.trace_se, b.trace_krylov,
                             b.steps, int(b.converged), b.hvps, b.seconds])
    return header, rows


def write_curvature(traces: Mapping[str, CurvatureTrace], path: str | Path) -> Path:
    """Curvature traces by run label as .csv (`curvature_rows`) or .npz (every array, metadata as JSON "meta")."""
    path = Path(path)
    if path.suffix == ".csv":
        header, rows = curvature_rows(traces)
        atomic_write(path, _csv_text(header, [[_cell(v) for v in row] for row in rows]))
    elif path.suffix == ".npz":
        meta, arrays = {}, {}
        for label, trace in traces.items():
            meta[label], a = trace.to_store()
            arrays.update({f"{label}/{k}": v for k, v in a.items()})
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
        atomic_write(path, buf.getvalue())
    else:
        raise SpecError(f"cannot write curvature to {path.name!r}: the suffix must be one of "
                        f"{', '.join(CURVATURE_FORMATS)}")
    return path


def read_curvature(path: str | Path) -> dict[str, CurvatureTrace]:
    """The traces written by `write_curvature` to a .npz (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        arrays = {k: f[k] for k in f.files if k != "meta"}
    return {label: CurvatureTrace.from_store(m, {k[len(label) + 1:]: v for k, v in arrays.items()
                                                 if k.startswith(f"{label}/")}) for label, m in meta.items()}


__all__ = ["CURVATURE_FORMATS", "FORMATS", "curvature_rows", "export_surface", "read_curvature", "read_npz",
           "write_csv", "write_curvature", "write_npz", "write_paths_csv", "write_paths_vtp", "write_table_csv",
           "write_vtp", "write_vts"]
