import csv
import json
import math

import pytest

from landscape.bench import (
    BenchSpec,
    plan_jobs,
    read_summary,
    run_bench,
    summarise,
    write_outputs,
)
from landscape.cli import main
from landscape.config import DataSpec, DefenseSpec, ModelSpec, SALSpec, TrainSpec
from landscape.errors import SpecError
from landscape.executors import ProcessExecutor, SerialExecutor
from landscape.stages.bench import BenchCell
from landscape.store import Store


def tiny_bench(methods=("random", "ops"), defenses=("none", "cutout"), seeds=(0, 1)) -> BenchSpec:
    """A sweep that costs seconds: 120 digits, 2 epochs, a 1-round SAL on 64 images."""
    return BenchSpec(
        data=DataSpec(n_train=120, n_test=60),
        model=ModelSpec("cnn"),
        train=TrainSpec(epochs=2, batch_size=32),
        sal=SALSpec(rounds=1, eval_size=64),
        methods=tuple(methods),
        defenses=tuple(DefenseSpec.parse(d) for d in defenses),
        seeds=tuple(seeds),
    )


def _numbers(rows):
    """Rows without the timing field, which is the only thing allowed to differ between executors."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


class Recorder:
    """Records every (stage, key) whose compute function actually ran; can fail the n-th one (an interruption)."""

    def __init__(self, monkeypatch, fail_at=None):
        self.computed, self.started, self.fail_at = [], 0, fail_at
        original = Store.get_or_compute

        def get_or_compute(store, stage, key, compute, **kw):
            def wrapped():
                if self.fail_at is not None and self.started == self.fail_at:
                    raise KeyboardInterrupt("simulated interruption")
                self.started += 1
                out = compute()
                self.computed.append((stage, key))  # completed (it is stored right after)
                return out

            return original(store, stage, key, wrapped, **kw)

        monkeypatch.setattr(Store, "get_or_compute", get_or_compute)


def test_grid_and_plan_share_crafts_and_references():
    spec = tiny_bench(methods=("random", "ops", "lsp"), defenses=("none", "jpeg"), seeds=(0, 1))
    cells = spec.cells()
    assert len(cells) == 3 * 2 * 2 and len({c.key() for c in cells}) == 12
    jobs = plan_jobs(cells)
    kinds = [j.kind for j in jobs]
    assert kinds.count("craft") == 3 * 2  # per (method, seed), shared by every defense
    assert kinds.count("reference") == 2 * 2  # per (defense, seed), shared by every method
    assert kinds.count("cell") == 12
    for j in jobs:
        if j.kind == "cell":
            (a,) = [d for d in j.deps if jobs[d].kind == "craft"]
            (b,) = [d for d in j.deps if jobs[d].kind == "reference"]
            assert jobs[a].kind == "craft" and jobs[a].cell.method == j.cell.method
            assert jobs[b].kind == "reference" and jobs[b].cell.defense == j.cell.defense
            assert jobs[b].cell.seed == jobs[a].cell.seed == j.cell.seed
    with pytest.raises(SpecError, match="repeat"):
        tiny_bench(seeds=(0, 0))


def test_cell_key_depends_on_defense_and_its_options():
    a = tiny_bench(defenses=("jpeg",)).cells()[0]
    b = tiny_bench(defenses=("jpeg:quality=30",)).cells()[0]
    c = tiny_bench(defenses=("jpeg:quality=10",)).cells()[0]
    assert a.key() != b.key() and a.key() == c.key()


@pytest.mark.slow
def test_sweep_outputs_and_resume_after_interruption_recomputes_nothing(tmp_path, monkeypatch):
    spec = tiny_bench(seeds=(0,))
    # reference: an uninterrupted run in its own store
    full = Recorder(monkeypatch)
    ref = run_bench(spec, store=Store(tmp_path / "a"), executor=SerialExecutor(str(tmp_path / "a"), "cpu"))
    monkeypatch.undo()
    assert len(ref.rows) == 4 and ref.computed == 4
    stages = [stage for stage, _ in full.computed]
    assert stages.count("poison") == 2  # one craft per (method, seed)
    assert stages.count("train") == 2 + 4  # one clean reference per (defense, seed), shared; one poisoned run per cell
    assert stages.count(BenchCell.folder) == 4
    for r in ref.rows:
        assert 0 <= r["clean_acc"] <= 1 and 0 <= r["poisoned_acc"] <= 1 and math.isfinite(r["ud"]) and r["ud"] >= 0

    # interrupted run: stop in the middle of the stages
    store = Store(tmp_path / "b")
    cut = len(full.computed) // 2
    first = Recorder(monkeypatch, fail_at=cut)
    with pytest.raises(KeyboardInterrupt):
        run_bench(spec, store=store, executor=SerialExecutor(str(store.root), "cpu"))
    monkeypatch.undo()
    assert 0 < len(first.computed) < len(full.computed)
    stored_before = {(st, k) for st, k in first.computed}

    second = Recorder(monkeypatch)
    resumed = run_bench(spec, store=store, executor=SerialExecutor(str(store.root), "cpu"))
    monkeypatch.undo()
    assert not stored_before & set(second.computed)  # nothing already stored was recomputed
    assert set(full.computed) == stored_before | set(second.computed)  # and nothing is missing
    assert _numbers(resumed.rows) == _numbers(ref.rows)

    # a third run loads every cell
    third = Recorder(monkeypatch)
    again = run_bench(spec, store=store, executor=SerialExecutor(str(store.root), "cpu"))
    monkeypatch.undo()
    assert third.computed == [] and again.loaded == 4 and again.computed == 0

    paths = write_outputs(again, tmp_path / "out" / "tiny", command="pytest", device="cpu")
    with open(paths["csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {r["method"] for r in rows} == {"random", "ops"}
    data = read_summary(paths["json"])
    assert data["rows"] == json.loads(json.dumps(again.rows)) and data["summary"] == summarise(again)
    md = paths["md"].read_text()
    assert "| method | none | cutout |" in md and "| clean | 1 | 1 |" in md and "command" in md


@pytest.mark.slow
def test_process_and_ray_executors_give_the_same_table(tmp_path):
    spec = tiny_bench(seeds=(1,))
    serial = run_bench(spec, store=Store(tmp_path / "s"), executor=SerialExecutor(str(tmp_path / "s"), "cpu"))
    procs = run_bench(spec, store=Store(tmp_path / "p"), executor=ProcessExecutor(2, str(tmp_path / "p"), "cpu"),
                      workers=2)
    assert procs.computed == len(spec.cells())
    assert _numbers(procs.rows) == _numbers(serial.rows)
    assert summarise(procs) == summarise(serial)

    ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'ue-landscape[ray]'); "
                                            "CI installs it")
    from landscape.executors import RayExecutor

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             configure_logging=False)
    try:
        rayed = run_bench(spec, store=Store(tmp_path / "r"), executor=RayExecutor(None, str(tmp_path / "r"), "cpu"))
    finally:
        ray.shutdown()
    assert rayed.executor == "ray"
    assert _numbers(rayed.rows) == _numbers(serial.rows)


def test_cli_dry_run_lists_cells(tmp_path, capsys):
    code = main(["bench", "--methods", "random,ops", "--defenses", "none,jpeg:quality=30,at:eps=32/255;steps=2",
                 "--seeds", "2", "--store", str(tmp_path / "st"), "--dry-run"])
    assert code == 0
    assert "12 cells (2 methods x 3 defenses x 2 seeds); 0 already stored" in capsys.readouterr().out


def test_cli_rejects_unknown_defense_and_method(tmp_path, capsys):
    assert main(["bench", "--defenses", "none,uneraser", "--dry-run", "--store", str(tmp_path)]) == 2
    assert "valid choices" in capsys.readouterr().err
    assert main(["bench", "--methods", "em,nope", "--dry-run", "--store", str(tmp_path)]) == 2


def test_cli_without_a_ray_cluster_says_so(tmp_path):
    """--ray auto with no cluster running: one line naming the address and the alternatives, not "cannot read or
    write a file" (Ray's ConnectionError is an OSError, which the CLI reports as a file error)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'ue-landscape[ray]'); CI installs it")
    if os.path.exists("/tmp/ray/ray_current_cluster"):
        pytest.skip("a Ray cluster runs on this machine; --ray auto would find it")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(UE_LANDSCAPE_STORE=str(tmp_path / "store"), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-m", "landscape", "bench", "--ray", "auto", "--methods", "random",
                           "--seeds", "1", "--epochs", "1", "--n-train", "20", "--n-test", "10", "--out",
                           str(tmp_path / "out" / "b")], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot connect to a Ray cluster at 'auto' ("), lines[0]
    assert "--ray local" in lines[0] and "--workers N" in lines[0] and "file" not in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_cell_stage_name_is_a_store_name(store):
    assert store.path(BenchCell.folder, "0123456789abcdef").name == "0123456789abcdef"


class _Unreachable:
    """Stands in for the `ray` module where no cluster answers: `init` records Ray's connection settings."""

    def __init__(self, names):
        self.names, self.seen = names, {}

    def is_initialized(self):
        return False

    def init(self, address=None, **kwargs):
        import os

        self.seen[address] = {k: os.environ.get(k) for k in self.names}
        raise ConnectionError(f"Failed to connect to Ray cluster at {address}.  Please ensure that the cluster ...")


def test_ray_connects_with_a_bounded_wait_and_keeps_the_users_settings(monkeypatch):
    """Where no cluster answers, Ray's own wait is over 10 minutes: RayExecutor sets Ray's settings that make it one
    ~20 s try while Ray connects (a value the user set is kept), then removes them; "local" keeps Ray's own."""
    import os
    import sys

    from landscape import executors
    from landscape.errors import LandscapeError

    names = ("RAY_gcs_server_port_wait_time_s", "RAY_py_gcs_connect_timeout_s")
    fake = _Unreachable(names)
    monkeypatch.setitem(sys.modules, "ray", fake)
    for name in names:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_py_gcs_connect_timeout_s", "3")  # the user's own
    with pytest.raises(LandscapeError, match=r"^cannot connect to a Ray cluster at '192\.0\.2\.1:6379' \(Failed to "
                                             r"connect to Ray cluster at 192\.0\.2\.1:6379\); start one first"):
        executors.RayExecutor("192.0.2.1:6379", "/nowhere", "cpu")
    assert fake.seen["192.0.2.1:6379"] == {"RAY_gcs_server_port_wait_time_s": "1", "RAY_py_gcs_connect_timeout_s": "3"}
    assert "RAY_gcs_server_port_wait_time_s" not in os.environ and os.environ.get(names[1]) == "3"
    monkeypatch.delenv("RAY_py_gcs_connect_timeout_s")
    with pytest.raises(LandscapeError, match="cannot connect to a Ray cluster at 'auto'"):
        executors.RayExecutor("auto", "/nowhere", "cpu")
    assert fake.seen["auto"] == {"RAY_gcs_server_port_wait_time_s": "1", "RAY_py_gcs_connect_timeout_s": "8"}
    with pytest.raises(LandscapeError, match="cannot start a local Ray instance"):
        executors.RayExecutor("local", "/nowhere", "cpu")
    assert fake.seen[None] == dict.fromkeys(names)  # it starts its own GCS: Ray's wait for it is kept
    assert not any(name in os.environ for name in names)


@pytest.mark.slow
def test_cli_with_no_cluster_at_the_ray_address_fails_within_seconds(tmp_path):
    """A HOST:PORT where nothing listens: the one-line error comes after ~20 s (Ray's own wait: over 10 minutes)."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'ue-landscape[ray]'); CI installs it")
    with socket.socket() as s:  # a port nothing listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(UE_LANDSCAPE_STORE=str(tmp_path / "store"), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    try:
        done = subprocess.run([sys.executable, "-m", "landscape", "bench", "--ray", f"127.0.0.1:{port}", "--methods",
                               "random", "--seeds", "1", "--epochs", "1", "--n-train", "20", "--n-test", "10", "--out",
                               str(tmp_path / "out" / "b")], capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("bench --ray HOST:PORT with no cluster there still waited after 90 s")
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after Ray's own warnings
    assert last.startswith(f"error: cannot connect to a Ray cluster at '127.0.0.1:{port}' ("), last
    assert "--ray local" in last and "--workers N" in last
    assert not (tmp_path / "out").exists()


def test_an_out_prefix_keeps_its_dots(tmp_path):
    """--out results/ud.v2 writes results/ud.v2.csv, .json and .md (not ud.csv); naming one of them is its prefix."""
    from landscape import bench

    result = bench.BenchResult(tiny_bench(methods=("random",), defenses=("none",), seeds=(0,)), [], 0, 0, 0.0,
                               "serial", 1)
    paths = write_outputs(result, tmp_path / "results" / "ud.v2", command="pytest", device="cpu")
    assert {k: p.name for k, p in paths.items()} == {"csv": "ud.v2.csv", "json": "ud.v2.json", "md": "ud.v2.md"}
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["ud.v2.csv", "ud.v2.json", "ud.v2.md"]
    assert read_summary(paths["json"])["rows"] == []
    for named in ("ud.v2.csv", "ud.v2.md", "ud.v2"):
        assert bench.output_files(tmp_path / named) == {k: tmp_path / f"ud.v2.{k}" for k in ("csv", "json", "md")}


def test_cli_checks_the_files_of_a_dotted_out_prefix_before_any_work(tmp_path, capsys):
    (tmp_path / "out" / "ud.v2.md").mkdir(parents=True)  # where the report would go: a folder
    code = main(["bench", "--methods", "random", "--seeds", "1", "--epochs", "1", "--n-train", "20", "--n-test", "10",
                 "--store", str(tmp_path / "store"), "--out", str(tmp_path / "out" / "ud.v2")])
    assert code == 2
    err = capsys.readouterr().err
    assert "ud.v2.md is a folder" in err and "--out (its .md file)" in err, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ud.v2.md"]
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("*.safetensors"))
