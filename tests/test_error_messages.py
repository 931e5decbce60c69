"""Refusals name the bad value and what would be accepted (PREAMBLE: a clear error naming the value and the choices).

Each case is a message that once said only what was wrong in general ("... must share ...", "needs a poison
method"), without the value that broke the rule or the valid choices.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landscape import cli
from landscape.bench import BenchSpec
from landscape.config import DataSpec, DefenseSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.curvature import Curvature, CurvatureTrace
from landscape.data import ImageSet
from landscape.data.imageset import Splits
from landscape.errors import ShapeError, SpecError
from landscape.multitask import CrossTaskSpec, training_pair
from landscape.points import StatePoints
from landscape.tasks import get_task


@pytest.mark.parametrize("command", ["craft", "evaluate-ue"])
def test_a_crafting_command_given_clean_lists_the_methods(command, tmp_path, capsys):
    assert cli.main([command, "--method", "clean", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not 'clean'" in err and "choose one of random, em, rem" in err


def test_cross_task_given_clean_names_the_list():
    with pytest.raises(SpecError, match=r"got \['clean', 'em'\]: leave out 'clean'"):
        CrossTaskSpec(poisons=(PoisonSpec("clean"), PoisonSpec("em")))


def test_an_empty_benchmark_says_which_axis_is_empty():
    with pytest.raises(SpecError, match="no seeds given") as err:
        BenchSpec(DataSpec(), ModelSpec("cnn"), TrainSpec(), SALSpec(), ("ops",), (DefenseSpec(),), ())
    assert "no methods" not in str(err.value) and "no defenses" not in str(err.value)


def test_splits_that_disagree_give_both_shapes():
    train = ImageSet(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]), ("a", "b"))
    test = ImageSet(torch.zeros(2, 1, 6, 6), torch.tensor([0, 1]), ("a", "b"))
    with pytest.raises(ShapeError, match=r"train \(1, 8, 8\) with 2 classes \('a', 'b'\), test \(1, 6, 6\)"):
        Splits("toy", train, test)


def test_states_of_different_shapes_name_the_entry():
    a = {"w": torch.zeros(2, 3), "b": torch.zeros(2)}
    b = {"w": torch.zeros(3, 3), "b": torch.zeros(2)}
    with pytest.raises(ShapeError, match=r"'w' is \(3, 3\) in state 1, \(2, 3\) in state 0"):
        StatePoints([a, b])
    with pytest.raises(ShapeError, match=r"state 1 differs from state 0 in \['b'\]"):
        StatePoints([a, {"w": torch.zeros(2, 3)}])


def test_a_curvature_trace_of_other_layers_names_the_epoch():
    states = [Curvature({"0.weight": None, "2.weight": None}), Curvature({"0.weight": None})]  # type: ignore[dict-item]
    with pytest.raises(ShapeError, match=r"epoch 3 measures \['0.weight'\], epoch 1 \['0.weight', '2.weight'\]"):
        CurvatureTrace(np.array([1, 3]), states)


def test_a_poisoned_set_not_aligned_with_the_clean_one_says_how():
    clean = ImageSet(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]), ("a", "b"))
    relabelled = ImageSet(torch.zeros(4, 1, 8, 8), torch.tensor([1, 1, 0, 1]), ("a", "b"))
    with pytest.raises(ShapeError, match="1 of 4 labels differ"):
        training_pair(get_task("classify"), clean, relabelled)
    fewer = ImageSet(torch.zeros(3, 1, 8, 8), torch.tensor([0, 1, 0]), ("a", "b"))
    with pytest.raises(ShapeError, match=r"images \(3, 1, 8, 8\) vs clean \(4, 1, 8, 8\)"):
        training_pair(get_task("classify"), clean, fewer)
