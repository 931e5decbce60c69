"""Tasks of the cross-task probe (DESIGN §5.6): targets derived from clean images, a model, a loss and metrics.

The paper's motivating finding (Ye, Su, Qian, ICLR 2025, Fig. 1) is that unlearnable examples crafted
against classification barely hurt other tasks trained on the same poisoned images (Taskonomy:
segmentation, depth, keypoints). This module defines the miniature tasks that probe it:

- `classify`: the class label (the task the poisons were crafted against); the digits `cnn`; accuracy.
- `segment` (digits only): per-pixel semantic segmentation, 0 = background and 1 + class on the stroke
  pixels (clean intensity >= `STROKE_THRESHOLD`); per-pixel cross-entropy; pixel accuracy and mIoU.
- `edges`: the Sobel gradient magnitude of the clean grey image, scaled to [0, 1]; MSE.
- `reconstruct`: the clean image itself; MSE; PSNR. Trained on poisoned inputs this is "recover the clean
  image", since the target always stays clean.

A task's targets are a pure function of the *clean* images and labels (`Task.targets`): poisoning changes
the inputs a model sees, never what it must predict. Every task gets its own model (`Task.build`); the dense
tasks share the architecture (and, for the same seed, the initial weights) of the `cnn`'s four conv layers
and add a two-layer upsampling head, so every task model has six weight layers and SAL vectors line up by
depth. Metrics are computed from summable statistics (`Task.stats`), so a data set evaluated in batches
gives exactly the metric of the whole set. This module only defines tasks; orchestration (poisoning,
training, SAL, UD) lives in `landscape.multitask`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from landscape.errors import ShapeError
from landscape.models import build_model
from landscape.models.cnn import conv_layers
from landscape.registry import Registry
from landscape.sal import CROSS_ENTROPY

# A pixel belongs to the digit's stroke if its clean grey value is at least this (digits: 8 of 16 levels).
STROKE_THRESHOLD = 0.5
# Largest Sobel gradient magnitude of an image in [0, 1] (|gx|, |gy| <= 4): edge maps are divided by it.
SOBEL_MAX = 4.0 * math.sqrt(2.0)
# PSNR of a perfect reconstruction is infinite; per-image MSE is floored so the best score is this (dB).
PSNR_CAP = 100.0


def grey(x: torch.Tensor) -> torch.Tensor:
    """Mean over channels, (N, C, H, W) -> (N, 1, H, W)."""
    return x.mean(dim=1, keepdim=True)


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the grey image, scaled to [0, 1]; (N, C, H, W) -> (N, 1, H, W).

    Borders are replicated, so a constant image has no edges (zero padding would invent a frame).
    """
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device)
    kernels = torch.stack([kx, kx.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    g = F.conv2d(F.pad(grey(x), (1, 1, 1, 1), mode="replicate"), kernels)  # (N, 2, H, W)
    return (g.pow(2).sum(1, keepdim=True).sqrt() / SOBEL_MAX).clamp(0.0, 1.0)


def dense_cnn(in_channels: int, out_channels: int, width: int = 1) -> nn.Sequential:
    """The `cnn`'s four conv layers (two 2x pools) and a two-layer upsampling head: (N, C, H, W) -> (N, out, H, W).

    conv16-conv16-pool-conv32-conv32-pool | up-conv16-up-conv(out); channels scaled by `width`. The encoder is
    the `cnn`'s own (`landscape.models.cnn.conv_layers`), so under the same seed it starts from the same
    weights. No skip connections: reconstruction must go through the (H/4 x W/4) bottleneck instead of copying
    its input.
    """
    a, b = 16 * width, 32 * width
    return nn.Sequential(
        *conv_layers(in_channels, width),  # (N, b, H/4, W/4)
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(b, a, 3, padding=1), nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(a, out_channels, 3, padding=1),
    )


class Task:
    """One task of the cross-task probe: what to predict from an image, with which model, loss and metrics.

    Subclasses set the class attributes and implement `targets`, `sample_loss`, `stats` and `metrics`.

    Attributes:
        name: registry key.
        title: human-readable name.
        primary: the metric reported in tables and curves (a key of `metrics(...)`).
        higher_is_better: direction of `primary`.
        datasets: data sets the task is defined on (None = all).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    primary: ClassVar[str]
    higher_is_better: ClassVar[bool]
    datasets: ClassVar[tuple[str, ...] | None] = None

    def supports(self, dataset: str) -> bool:
        return self.datasets is None or dataset in self.datasets

    # --- targets and model -------------------------------------------------------------------------------

    def targets(self, x_clean: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample targets (N, ...) computed from the clean images (N, C, H, W) and labels (N,) only."""
        raise NotImplementedError

    def out_channels(self, image_shape: tuple[int, int, int], num_classes: int) -> int:
        raise NotImplementedError

    def build(self, image_shape: tuple[int, int, int], num_classes: int, *, width: int = 1,
              seed: int = 0) -> nn.Module:
        """A fresh model for this task, initialised from `seed` (the caller's RNG state is untouched)."""
        _, h, w = image_shape
        if h % 4 or w % 4:
            raise ShapeError(f"dense task models need H and W divisible by 4 (two 2x pools), got {h}x{w}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return dense_cnn(image_shape[0], self.out_channels(image_shape, num_classes), width)

    # --- loss ----------------------------------------------------------------------------------------------

    def sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Loss of each sample (N,), averaged over its pixels for dense tasks."""
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch (the training objective)."""
        return self.sample_loss(outputs, targets).mean()

    def sample_score(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
        """Per-sample accuracy-like score in [0, 1] (N,) for SAL's accuracy variant; None if undefined."""
        return None

    # --- metrics -------------------------------------------------------------------------------------------

    def stats(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summable sufficient statistics of the metrics (1-D float64, on the CPU)."""
        raise NotImplementedError

    def metrics(self, stats: torch.Tensor) -> dict[str, float]:
        """Every metric of this task from summed `stats`; contains `primary`."""
        raise NotImplementedError

    def primary_metric(self, stats: torch.Tensor) -> float:
        return self.metrics(stats)[self.primary]

    def score(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Every metric of this task on one set of outputs (convenience for tests and small sets)."""
        return self.metrics(self.stats(outputs, targets))

    def __repr__(self) -> str:
        return f"Task({self.name!r})"


TASKS: Registry[Task] = Registry("task")


def register(cls: type[Task]) -> type[Task]:
    """Register one instance of `cls` under `cls.name`."""
    TASKS.register(cls.name)(cls())
    return cls


def get_task(name: str) -> Task:
    return TASKS.get(name)


def tasks_for(dataset: str) -> list[str]:
    """Names of the tasks defined on `dataset`, in registration order."""
    return [name for name in TASKS.names() if TASKS.get(name).supports(dataset)]


@register
class Classify(Task):
    """The class label, with the digits `cnn`; the task the unlearnable examples are crafted against."""

    name, title, primary, higher_is_better = "classify", "Classification", "accuracy", True

    def targets(self, x_clean: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y.clone()

    def out_channels(self, image_shape: tuple[int, int, int], num_classes: int) -> int:
        return num_classes

    def build(self, image_shape: tuple[int, int, int], num_classes: int, *, width: int = 1,
              seed: int = 0) -> nn.Module:
        return build_model("cnn", image_shape, num_classes, width=width, seed=seed)

    def sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return CROSS_ENTROPY.sample_loss(outputs, targets)  # SAL's default objective: the same loss, one place

    def sample_score(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return CROSS_ENTROPY.sample_score(outputs, targets)

    def stats(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        correct = (outputs.argmax(1) == targets).sum()
        return torch.tensor([float(correct), float(len(targets))], dtype=torch.float64)

    def metrics(self, stats: torch.Tensor) -> dict[str, float]:
        return {"accuracy": float(stats[0] / stats[1].clamp_min(1))}


@register
class Segment(Task):
    """Per-pixel semantic segmentation of the digit strokes: 0 = background, 1 + class on stroke pixels.

    Metrics: pixel accuracy and mIoU, the mean over classes (background included) of TP / (TP + FP + FN)
    from the confusion matrix of the whole set; classes absent from both prediction and target are skipped.
    """

    name, title, primary, higher_is_better = "segment", "Semantic segmentation", "miou", True
    datasets = ("digits",)

    def targets(self, x_clean: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        stroke = grey(x_clean)[:, 0] >= STROKE_THRESHOLD  # (N, H, W)
        return torch.where(stroke, (y + 1)[:, None, None], torch.zeros_like(y)[:, None, None])

    def out_channels(self, image_shape: tuple[int, int, int], num_classes: int) -> int:
        return num_classes + 1

    def sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets, reduction="none").flatten(1).mean(1)

    def sample_score(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs.argmax(1) == targets).to(outputs.dtype).flatten(1).mean(1)

    def stats(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        k = outputs.shape[1]
        pred = outputs.argmax(1).flatten().cpu()
        true = targets.flatten().cpu()
        return torch.bincount(true * k + pred, minlength=k * k).to(torch.float64)  # row = true, col = predicted

    def metrics(self, stats: torch.Tensor) -> dict[str, float]:
        k = math.isqrt(len(stats))
        conf = stats.view(k, k)
        tp = conf.diag()
        union = conf.sum(0) + conf.sum(1) - tp
        present = union > 0
        miou = float((tp[present] / union[present]).mean()) if bool(present.any()) else float("nan")
        return {"miou": miou, "pixel_acc": float(tp.sum() / conf.sum().clamp_min(1))}


@register
class Edges(Task):
    """The Sobel edge map (gradient magnitude, scaled to [0, 1]) of the clean grey image; MSE per pixel."""

    name, title, primary, higher_is_better = "edges", "Edge map", "mse", False

    def targets(self, x_clean: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sobel_magnitude(x_clean)

    def out_channels(self, image_shape: tuple[int, int, int], num_classes: int) -> int:
        return 1

    def sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs - targets).pow(2).flatten(1).mean(1)

    def stats(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        sse = (outputs.double() - targets.double()).pow(2).sum()
        return torch.tensor([float(sse), float(targets.numel())], dtype=torch.float64)

    def metrics(self, stats: torch.Tensor) -> dict[str, float]:
        return {"mse": float(stats[0] / stats[1].clamp_min(1))}


@register
class Reconstruct(Task):
    """The clean image itself, through the bottleneck; MSE loss; PSNR (mean over images, outputs clipped to [0, 1]).

    PSNR = 10 log10(1 / MSE) per image with the MSE floored at 10^(-PSNR_CAP/10), so a perfect
    reconstruction scores `PSNR_CAP` dB.
    """

    name, title, primary, higher_is_better = "reconstruct", "Reconstruction", "psnr", True

    def targets(self, x_clean: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x_clean.clone()

    def out_channels(self, image_shape: tuple[int, int, int], num_classes: int) -> int:
        return image_shape[0]

    def sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs - targets).pow(2).flatten(1).mean(1)

    def stats(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        err = (outputs.double().clamp(0.0, 1.0) - targets.double()).pow(2).flatten(1)  # (N, C*H*W)
        mse = err.mean(1).clamp_min(10.0 ** (-PSNR_CAP / 10.0))
        psnr = (-10.0 * torch.log10(mse)).sum()
        return torch.tensor([float(psnr), float(len(targets)), float(err.sum()), float(err.numel())],
                            dtype=torch.float64)

    def metrics(self, stats: torch.Tensor) -> dict[str, float]:
        return {"psnr": float(stats[0] / stats[1].clamp_min(1)), "mse": float(stats[2] / stats[3].clamp_min(1))}


__all__ = ["PSNR_CAP", "STROKE_THRESHOLD", "TASKS", "Task", "dense_cnn", "get_task", "sobel_magnitude", "tasks_for"]
