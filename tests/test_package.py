import subprocess
import sys


def test_engine_does_not_import_streamlit():
    code = "import sys, landscape, landscape.experiment, landscape.cli; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_cli_train_json_and_bad_input(tmp_path):
    run = [sys.executable, "-m", "landscape", "train", "--epochs", "1", "--store", str(tmp_path), "--json",
           "--n-train", "100"]
    done = subprocess.run(run, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import json

    summary = json.loads(done.stdout)
    assert summary["epochs_done"] == 1 and 0.0 <= summary["final"]["test_acc"] <= 1.0
    bad = subprocess.run([sys.executable, "-m", "landscape", "train", "--model", "vgg"], capture_output=True, text=True)
    assert bad.returncode == 2 and "valid choices" in bad.stderr and "Traceback" not in bad.stderr
    neg = subprocess.run([sys.executable, "-m", "landscape", "train", "--epochs", "-3"], capture_output=True, text=True)
    assert neg.returncode == 2 and "TrainSpec.epochs = -3" in neg.stderr
