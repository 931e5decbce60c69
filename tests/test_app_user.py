"""AppTests of the user's own model and data in the app (#16 item 4): a model named in `UE_LANDSCAPE_MODELS`
(the residual two-branch BatchNorm net of tests/fixtures.py, defined outside `landscape`) and a `.npz` data set
uploaded through the sidebar reach a UD value; a refused upload is explained and changes nothing."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
from streamlit.testing.v1 import AppTest

from landscape.app.state import AppSpec
from tests.fixtures import quadrant_images
from tests.test_app import APP, TIMEOUT, no_exception

MODEL = "tests.fixtures:factory"


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def upload(at: AppTest, content: bytes, name: str = "patches.npz") -> AppTest:
    at.file_uploader(key="upload_npz").set_value((name, content, "application/octet-stream")).run()
    return at


def test_a_user_model_and_an_uploaded_npz_reach_a_ud_value(monkeypatch):
    monkeypatch.setenv("UE_LANDSCAPE_MODELS", MODEL)
    x, y = quadrant_images(96, classes=4)
    x_test, y_test = quadrant_images(48, classes=4, seed=1)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/ud.py").run()
    assert MODEL in at.selectbox(key="_w_model").options, "the configured model is offered"
    upload(at, npz_bytes(x=x, y=y, x_test=x_test, y_test=y_test))
    no_exception(at)
    dataset = at.selectbox(key="_w_dataset").value
    assert dataset.startswith("npz:"), f"the upload is selected: {dataset}"
    options = at.selectbox(key="_w_dataset").options
    assert options.count("npz: patches.npz (yours)") == 1, f"offered once, under its own name: {options}"
    at.selectbox(key="_w_model").set_value(MODEL).run()
    at.selectbox(key="_w_method").set_value("random").run()
    at.number_input(key="_w_epochs").set_value(2).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    at.button(key="ud_run").click().run()
    no_exception(at)
    at.run()  # the next script run reads the stored result
    no_exception(at)
    ud = next(m for m in at.metric if m.label == "UD (random)")
    from landscape.app import engine
    from landscape.app.views.study import ud_value

    report = engine.ud_stage(AppSpec(dataset=dataset, model=MODEL, method="random", epochs=2)).load(engine.store())
    assert report is not None and ud.value == ud_value(report), "the page shows the stored UD of the user's study"
    assert "(yours)" in at.selectbox(key="_w_dataset").format_func(dataset)


class Payload:
    """Unpickling this object creates a file: proof that a loader executed code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_refused_upload_is_explained_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    objects = np.array([Payload(str(marker))], dtype=object)
    buffer = io.BytesIO()
    np.save(buffer, objects, allow_pickle=True)  # an .npz member holding a pickled object array
    _, y = quadrant_images(8)


    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("x.npy", buffer.getvalue())
        z.writestr("y.npy", pickle.dumps(y))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    upload(at, archive.getvalue(), "hostile.npz")
    no_exception(at)
    assert any("hostile.npz" in e.value for e in at.error), [e.value for e in at.error]
    assert not marker.exists(), "nothing in the upload ran"
    assert at.selectbox(key="_w_dataset").value == "digits", "the sidebar keeps its data set"
    assert at.get("plotly_chart"), "and the page goes on (the demo)"


def test_configured_data_sets_are_offered_and_a_bad_entry_is_explained(tmp_path, monkeypatch):
    x, y = quadrant_images(40)
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    monkeypatch.setenv("UE_LANDSCAPE_DATA", f"npz:{tmp_path / 'mine.npz'}")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exception(at)
    options = at.selectbox(key="_w_dataset").options
    assert "npz: mine.npz (yours)" in options, options
    monkeypatch.setenv("UE_LANDSCAPE_DATA", "hdf5:/data/x.h5")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert any("UE_LANDSCAPE_DATA" in e.value and "hdf5" in e.value for e in at.error), [e.value for e in at.error]
    assert at.get("plotly_chart"), "the page goes on with the registered data sets (the demo)"


def test_a_user_model_that_cannot_be_built_is_named_before_any_button(monkeypatch):
    """A configured model with the wrong number of logits: every page that would train it shows the engine's
    message at once (as a bad data set does), with no cost line and no button to press first."""
    monkeypatch.setenv("UE_LANDSCAPE_MODELS", "tests.fixtures:wrong_width")
    for page, button in [("pages/overview.py", "overview_run"), ("pages/train.py", "train"),
                         ("pages/sal.py", "sal_run"), ("pages/ud.py", "ud_run")]:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
        at.switch_page(page).run()
        at.selectbox(key="_w_model").set_value("tests.fixtures:wrong_width").run()
        no_exception(at)
        assert any("logits of shape" in e.value for e in at.error), (page, [e.value for e in at.error])
        assert button not in [b.key for b in at.button], page


def test_one_bad_configured_entry_is_reported_and_the_good_ones_offered(monkeypatch, tmp_path):
    monkeypatch.setenv("UE_LANDSCAPE_MODELS", f"{MODEL},models/net.py:factory")
    monkeypatch.setenv("UE_LANDSCAPE_DATA", f"digits:/tmp,npz:{tmp_path}/mine.npz")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert MODEL in at.selectbox(key="_w_model").options, "the good model is offered"
    assert "npz: mine.npz (yours)" in at.selectbox(key="_w_dataset").options, "the good data set is offered"
    warnings = [e.value for e in at.error]
    assert any("'models/net.py:factory'" in w and "Left out" in w for w in warnings), warnings
    assert any("'digits:/tmp'" in w and "UE_LANDSCAPE_DATA" in w for w in warnings), warnings


def test_the_uploader_refuses_in_the_browser_what_the_store_would_refuse():
    """Streamlit's default limit is 200 MB a file: the widget said "200MB per file" under a label saying 64 MiB, and
    an upload between the two was sent whole to the server before being refused."""
    from landscape.userconfig import MAX_UPLOAD_BYTES

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    (widget,) = at.get("file_uploader")
    assert widget.proto.max_upload_size_mb << 20 == MAX_UPLOAD_BYTES


def test_an_upload_is_named_by_its_file_name_not_by_its_copy_in_the_store():
    """The cost line and the Overview name an uploaded data set as the sidebar does, not by the store's hash path."""
    x, y = quadrant_images(96, classes=4)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    upload(at, npz_bytes(x=x, y=y), "mine.npz")
    no_exception(at)
    assert at.selectbox(key="_w_dataset").value.startswith("npz:")
    shown = "\n".join([str(m.value) for m in at.markdown] + [str(i.value) for i in at.info])
    assert "npz: mine.npz (yours)" in shown, shown
    assert "/inputs/" not in shown, shown
