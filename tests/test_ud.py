"""UD (landscape.ud): oracles against a direct scikit-learn computation, degenerate cases, continuous views."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.cluster import KMeans

from landscape.errors import ShapeError
from landscape.ud import UDReport, epoch_midpoint, unlearnable_distance

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors; see conftest.py

CLEAN = np.array([
    [0.90, 0.80, 0.10, 0.20, 0.85],
    [0.70, 0.60, 0.05, 0.10, 0.65],
    [0.50, 0.10, 0.02, 0.45, 0.40],
    [0.30, 0.28, 0.01, 0.02, 0.25],
])
POISONED = np.array([
    [0.60, 0.10, 0.05, 0.10, 0.20],
    [0.40, 0.05, 0.01, 0.02, 0.10],
    [0.20, 0.02, 0.01, 0.01, 0.05],
])


def _direct(clean, poisoned):
    mids = []
    for row in clean:
        km = KMeans(n_clusters=2, random_state=0, n_init="auto").fit(row.reshape(-1, 1))
        mids.append(km.cluster_centers_.mean())
    beta = float(np.mean(mids))
    lp_c = np.mean([(row > beta).sum() for row in clean])
    lp_p = np.mean([(row > beta).sum() for row in poisoned])
    return beta, np.array(mids), lp_c, lp_p, lp_p / lp_c


def test_beta_counts_and_ud_match_a_direct_sklearn_computation():
    beta, mids, lp_c, lp_p, ud = _direct(CLEAN, POISONED)
    r = unlearnable_distance(CLEAN, POISONED)
    assert r.beta == pytest.approx(beta, rel=1e-12)
    np.testing.assert_allclose(r.betas, mids, rtol=1e-12)
    assert r.lp_clean == pytest.approx(lp_c) and r.lp_poisoned == pytest.approx(lp_p)
    assert r.ud == pytest.approx(ud, rel=1e-12) and r.ud_defined and r.message is None
    np.testing.assert_array_equal(r.flags_clean, beta < CLEAN)
    np.testing.assert_array_equal(r.flags_poisoned, beta < POISONED)
    np.testing.assert_array_equal(r.counts_clean, (beta < CLEAN).sum(1))
    np.testing.assert_array_equal(r.counts_poisoned, (beta < POISONED).sum(1))
    assert r.ud < 1  # the poisoned SAL is lower


def test_ud_of_a_run_against_itself_is_one():
    r = unlearnable_distance(CLEAN, CLEAN)
    assert r.ud == 1.0 and r.ud_defined
    np.testing.assert_array_equal(r.counts_clean, r.counts_poisoned)
    assert r.w1_overall == 0 and np.all(r.w1_layers == 0)
    assert r.mean_ratio_overall == pytest.approx(1.0) and np.allclose(r.mean_ratio_layers, 1.0)


def test_accepts_sal_traces_and_keeps_names():
    class Trace:  # duck-typed SALTrace
        def __init__(self, sal):
            self.sal, self.epochs = sal, np.arange(1, len(sal) + 1)
            self.layers = tuple(f"l{i}" for i in range(sal.shape[1]))

    r = unlearnable_distance(Trace(CLEAN), Trace(POISONED))
    assert r.layers == ("l0", "l1", "l2", "l3", "l4")
    assert list(r.epochs_poisoned) == [1, 2, 3]
    assert r.ud == pytest.approx(unlearnable_distance(CLEAN, POISONED).ud)


def test_all_equal_epoch_has_its_common_value_as_midpoint():
    mid, note = epoch_midpoint(np.full(6, 0.3))
    assert mid == 0.3 and "same SAL" in note
    mid, note = epoch_midpoint(np.array([0.7]))
    assert mid == 0.7 and "one layer" in note
    mid, note = epoch_midpoint(np.array([0.0, 1.0, 1.0]))
    assert mid == pytest.approx(0.5) and note is None


def test_clean_run_without_learnable_layer_gives_nan_and_a_message():
    clean = np.full((3, 4), 0.2)  # all equal at every epoch: midpoint = value, nothing strictly above
    r = unlearnable_distance(clean, POISONED[:, :4])
    assert r.lp_clean == 0 and not r.ud_defined and np.isnan(r.ud)
    assert "no learnable layer" in r.message
    assert any("same SAL" in n for n in r.notes)
    assert np.isfinite(r.w1_overall)  # the continuous view still answers


def test_non_finite_epochs_are_left_out_with_a_note():
    clean = CLEAN.copy()
    clean[1, 2] = np.nan
    r = unlearnable_distance(clean, POISONED)
    expected = unlearnable_distance(np.delete(CLEAN, 1, axis=0), POISONED)
    assert r.beta == pytest.approx(expected.beta) and r.ud == pytest.approx(expected.ud)
    assert np.isnan(r.betas[1]) and np.isnan(r.counts_clean[1]) and not r.flags_clean[1].any()
    assert any("epoch(s) [2]" in n for n in r.notes)


def test_no_usable_clean_epoch():
    r = unlearnable_distance(np.full((2, 3), np.nan), POISONED[:, :3])
    assert np.isnan(r.beta) and np.isnan(r.ud) and not r.ud_defined and "threshold" in r.message


def test_layer_mismatch_is_an_error():
    with pytest.raises(ShapeError, match="same layers"):
        unlearnable_distance(CLEAN, POISONED[:, :3])
    with pytest.raises(ShapeError):
        unlearnable_distance(CLEAN[0], POISONED)


def test_continuous_measures_are_direct_w1_and_mean_ratios():
    from scipy.stats import wasserstein_distance

    r = unlearnable_distance(CLEAN, POISONED)
    for j in range(CLEAN.shape[1]):
        assert r.w1_layers[j] == pytest.approx(wasserstein_distance(CLEAN[:, j], POISONED[:, j]))
        assert r.mean_ratio_layers[j] == pytest.approx(POISONED[:, j].mean() / CLEAN[:, j].mean())
    assert r.w1_overall == pytest.approx(wasserstein_distance(CLEAN.ravel(), POISONED.ravel()))
    assert r.mean_ratio_overall == pytest.approx(POISONED.mean() / CLEAN.mean())


def test_report_round_trips_through_json():
    for r in (unlearnable_distance(CLEAN, POISONED), unlearnable_distance(np.full((2, 3), 0.2), POISONED[:, :3])):
        back = UDReport.from_dict(json.loads(json.dumps(r.to_dict())))
        assert back.beta == r.beta and (back.ud == r.ud or (np.isnan(back.ud) and np.isnan(r.ud)))
        np.testing.assert_array_equal(back.flags_clean, r.flags_clean)
        np.testing.assert_array_equal(back.counts_poisoned, r.counts_poisoned)
        assert back.message == r.message and back.notes == r.notes


@pytest.mark.parametrize(("defense", "baseline", "noted"), [
    ("cutout", "running", True), ("mixup", "running", True), ("at", "running", True),
    ("cutout", "fresh", False), ("jpeg", "running", False), ("none", "running", False),
])
def test_ud_notes_the_running_baseline_under_a_batch_defense(defense, baseline, noted):
    """Under a batch defense the running L_0 is the defended batches' loss, L_min/L_max the plain images'."""
    from landscape.config import DefenseSpec, ExperimentSpec, PoisonSpec, SALSpec
    from landscape.stages.ud import resolve_experiment, running_baseline_caveat

    spec = resolve_experiment(ExperimentSpec(poison=PoisonSpec(method="em"), sal=SALSpec(baseline=baseline),
                                             defense=DefenseSpec(name=defense)))
    note = running_baseline_caveat(spec)
    assert (note is not None) == noted
    if noted:
        assert defense in note and "baseline='fresh'" in note


AUG = {"augment": "crop_flip", "crop_padding": 4}


@pytest.mark.parametrize(("train", "defense", "sal", "noted"), [
    ({}, "none", {}, ()),                                          # nothing transforms the trainer's batches
    (AUG, "none", {}, ("crop_flip", "4-px", "batched engine")),    # the batched engine never augments
    ({"augment": "crop"}, "none", {}, ("training augmentation crop ", "1-px")),
    (AUG, "none", {"engine": "reference"}, ("reference engine without SALSpec.augment",)),
    (AUG, "none", "paper", ()),                                    # the reference engine applies the recipe's
    (AUG, "none", {"baseline": "fresh"}, ()),                      # fresh L_0: the same images as L_min, L_max
    ({}, "cutout", {}, ("defense cutout",)),                       # as before
    (AUG, "cutout", {}, ("defense cutout", "crop_flip")),
    (AUG, "cutout", {"baseline": "fresh"}, ()),
])
def test_ud_notes_the_running_baseline_under_an_augmenting_recipe(train, defense, sal, noted):
    """With the running baseline, L_0 comes from the trainer's augmented batches; the SAL engines evaluate
    unaugmented images unless the reference engine applies the recipe's augmentation (`SALSpec.augment`)."""
    from landscape.config import DefenseSpec, ExperimentSpec, PoisonSpec, SALSpec, TrainSpec
    from landscape.stages.ud import resolve_experiment, running_baseline_caveat

    sal_spec = SALSpec.preset("paper") if sal == "paper" else SALSpec(**sal)
    spec = resolve_experiment(ExperimentSpec(poison=PoisonSpec(method="em"), train=TrainSpec(**train),
                                             sal=sal_spec, defense=DefenseSpec(name=defense)))
    note = running_baseline_caveat(spec)
    assert (note is not None) == bool(noted), note
    if noted:
        assert all(part in note for part in noted) and "baseline='fresh'" in note, note
    if defense == "cutout" and not train and noted:  # the batch defense's note is word for word what it was
        assert note == ("defense cutout: SAL's running L_0 is the loss of the defended batches, while L_min and "
                        "L_max are evaluated on the untransformed training images, so every layer's S_min carries "
                        "that gap (in both runs); SAL's baseline='fresh' compares like with like")


def test_a_layer_exactly_at_beta_is_not_learnable():
    """Definition 3 counts SAL_l > beta strictly: a value equal to beta is not a learnable layer."""
    clean = np.array([[0.0, 0.0, 1.0, 1.0]])  # KMeans centres 0 and 1: beta = 0.5 exactly
    poisoned = np.array([[0.5, 0.5, 0.7, 0.1], [0.5, 0.9, 0.5, 0.5]])
    r = unlearnable_distance(clean, poisoned)
    assert r.beta == 0.5 and r.lp_clean == 2
    np.testing.assert_array_equal(r.counts_poisoned, [1, 1])
    assert r.ud == pytest.approx(0.5)


def test_the_caveat_is_the_specs_of_today_when_a_stored_ud_is_read():
    """UD entries stored before a caveat changed (e.g. an augmenting recipe's, added later) read as new ones do:
    the caveat comes from the spec on loading, once, replacing any caveat stored with the entry."""
    from landscape.config import DefenseSpec, ExperimentSpec, PoisonSpec, SALSpec, TrainSpec
    from landscape.stages.ud import CAVEAT_END, UDStage, running_baseline_caveat
    from landscape.store import Entry

    report = unlearnable_distance(np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]]))
    old = report.to_dict()
    old["notes"] = ["clean epoch 1: a degenerate case", "defense cutout: an older wording" + CAVEAT_END]
    for train, defense in ((TrainSpec(augment="crop_flip"), "cutout"), (TrainSpec(augment="crop_flip"), "none"),
                           (TrainSpec(), "none")):
        stage = UDStage.of(ExperimentSpec(poison=PoisonSpec(method="em"), train=train, sal=SALSpec(),
                                          defense=DefenseSpec(name=defense)))
        caveat = running_baseline_caveat(stage.spec)
        notes = stage.decode(Entry({"ud": old}, {})).notes
        assert notes == ["clean epoch 1: a degenerate case"] + ([caveat] if caveat else []), notes
        computed = stage.decode(Entry({"ud": report.to_dict()}, {})).notes  # as compute stores it: no caveat
        assert computed == ([caveat] if caveat else [])


def test_a_poisoned_epoch_with_non_finite_sal_is_left_out_of_its_counts():
    """A NaN in the poisoned run drops that epoch only: #LP_poisoned is the mean count over its other epochs
    (hand count against the clean beta), the epoch's count is NaN and its flags False."""
    poisoned = POISONED.copy()
    poisoned[0, 1] = np.nan  # the first poisoned epoch is unusable; the other two stay
    r = unlearnable_distance(CLEAN, poisoned)
    beta, _, lp_c, _, _ = _direct(CLEAN, POISONED)
    kept = [(row > beta).sum() for row in POISONED[1:]]
    assert np.isnan(r.counts_poisoned[0]) and not r.flags_poisoned[0].any()
    np.testing.assert_array_equal(r.counts_poisoned[1:], kept)
    assert r.lp_poisoned == pytest.approx(np.mean(kept)) and r.ud == pytest.approx(np.mean(kept) / lp_c)
    assert r.beta == pytest.approx(beta) and any("poisoned epoch(s) [1]" in n for n in r.notes)
