"""AppTest: the UD page shows UD's seed distribution (regime study) beside its point value, with the seed count."""

from __future__ import annotations

import json

import pytest

from tests.test_app import charts, no_exception, open_page, texts


def _study(path, settings):
    """A regime-study file with UD per seed for each (AppSpec, UDs)."""
    from landscape.app import engine
    from landscape.seeds import seed_specs
    from landscape.stages.ud import resolve_experiment

    rows = [{"spec": resolve_experiment(s).to_dict(), "ud": ud}
            for app_spec, uds in settings
            for s, ud in zip(seed_specs(engine.experiment_spec(app_spec), len(uds)), uds, strict=True)]
    path.write_text(json.dumps({"cells": rows}))


def _specs(at) -> list[str]:
    """The titles of the page's figures."""
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in charts(at)]


def test_ud_page_shows_the_seed_spread_and_count(tmp_path, monkeypatch):
    from landscape import seeds
    from landscape.app.state import AppSpec

    study = tmp_path / "regime.json"
    here = AppSpec()  # the sidebar's default setting (the page shows it without computing anything)
    _study(study, [(here, (0.4, 0.6, 0.5)), (AppSpec(method="random"), (1.1, 1.5, 1.3)),
                   (AppSpec(epochs=30, method="ops"), (0.2, 0.3))])
    monkeypatch.setattr(seeds, "STUDY", study)
    at = open_page("pages/ud.py")
    no_exception(at)
    point = next(m for m in at.metric if m.label == f"UD ({here.method})").value
    assert any("UD over seeds: digits / cnn / em" in s for s in _specs(at))
    text = texts(at)
    assert f"{here.method}: UD 0.500 ± 0.100 (3 seeds, 0.400–0.600) over the study's seeds" in text
    assert f"the UD on this page, {point}" in text and "SAL at other epochs" not in text  # the very setting
    fig = next(json.loads(c.proto.spec) for c in charts(at) if "UD over seeds: digits / cnn / em" in
               json.loads(c.proto.spec)["layout"]["title"]["text"])
    marked = next(t for t in fig["data"] if t["name"] == f"{here.method}: this run")
    assert f"{marked['y'][0]:.3f}" == point  # the page's own number, marked beside the distribution
    picker = at.selectbox(key="ud_study_setting")
    assert len(picker.options) == 2 and "30 epochs" in picker.options[1]
    picker.set_value(picker.options[1]).run()
    no_exception(at)
    assert "ops: 0.250 ± 0.071 (2 seeds, 0.200–0.300)" in texts(at)


@pytest.mark.parametrize("ran", [False, True])
def test_ud_page_without_the_setting_or_the_study_says_so(tmp_path, monkeypatch, ran):
    from landscape import seeds
    from landscape.app.state import AppSpec

    study = tmp_path / "regime.json"
    if ran:
        _study(study, [(AppSpec(epochs=30, method="em"), (0.2, 0.4, 0.3))])
    monkeypatch.setattr(seeds, "STUDY", study)
    at = open_page("pages/ud.py")
    no_exception(at)
    assert not any("UD over seeds: digits / cnn / em" in s for s in _specs(at))
    if ran:
        assert "did not run this setting" in texts(at) and "0.10 to 0.10" in texts(at)
    else:
        assert "No regime study is shipped" in texts(at)


def test_ud_page_shows_the_shipped_study_and_its_layer_shares():
    """The shipped assets/benchmarks/regime.json: every setting pickable, with the per-epoch layer shares (ours)."""
    from landscape import seeds

    settings = seeds.study_settings(seeds.study_rows())
    assert settings, "assets/benchmarks/regime.json is shipped"
    at = open_page("pages/ud.py")
    no_exception(at)
    assert at.selectbox(key="ud_study_setting").options == list(settings)
    assert "Each layer's share of its epoch's SAL (ours; mean over seeds)" in _specs(at)
    at.selectbox(key="ud_study_layers").set_value("ops").run()
    no_exception(at)
