"""The stage layer: every cached result of the engine, one module per stage (see `landscape.stages.base`).

Stages, in the order data flows through them (each reads its inputs from the stages before it):

- `poison.PoisonStage`: a crafted poison of the training split;
- `train.TrainStage`: a training run (history and checkpoints); `train.SALStage`: SAL of a run's stored
  checkpoints; `train.TrainerSALStage`: SAL measured while a run that keeps too few checkpoints trains (it
  stores the run's `TrainStage` entry too); `train.sal_stage` picks which of the two holds a run's SAL;
- `curvature.CurvatureStage`: Hessian curvature per layer (and whole model) of a run's stored checkpoints;
- `surface.SurfaceStage`: loss/accuracy surfaces of the clean and poisoned runs; `surface.LayerSliceStage`:
  slices of them along one layer's directions at one stored epoch;
- `ud.UDStage`: UD of a clean-vs-poisoned experiment;
- `crosstask.TaskRunStage`: one task model of the cross-task probe;
- `bench.BenchCell`: one summary row of the UD benchmark.

`pool.compute_concurrently` computes independent stages side by side in worker processes (an experiment's clean
and poisoned chains), through these same stages and keys.

This package imports nothing itself, so importing one stage never imports the others.
"""
