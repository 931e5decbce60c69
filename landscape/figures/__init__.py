"""Pure figure builders: plain arrays in, `plotly.graph_objects.Figure` out.

Every builder takes numpy arrays (or mappings of them) with their axes stated in the signature and
returns a figure; nothing here computes science, reads files or imports streamlit, so the builders are
tested on the figure's data (`fig.data[i].z`, `fig.layout`) without rendering. Axis orientation is
handled here and only here: arrays indexed (α, β) or (epoch, layer) are transposed once, because
plotly reads `z[row = y][col = x]`. Raw values stay raw; a log scale is an explicit option and is
named in the axis title.

Builders live in one module per subject (`style` holds what they share); this package re-exports every public
builder, so `from landscape.figures import contour` works whichever module it lives in. A new subject is a new
module here, re-exported below.
"""

from landscape.figures.cross_task import cross_task_drops, task_curves, task_similarity
from landscape.figures.curvature import (
    curvature_figures,
    layer_slice,
    layer_slice_figures,
    rank_agreement,
    selectable_cells,
)
from landscape.figures.experiment import experiment_figures
from landscape.figures.poison import budget_figure, image_grid, pick_examples, poison_sample
from landscape.figures.sal import (
    channel_heatmaps,
    learnable_layers,
    mark_sal_ball,
    sal_distributions,
    sal_heatmaps,
    spectral_density,
    ud_bars,
    ud_counts,
)
from landscape.figures.seeds import ud_seed_spread
from landscape.figures.style import color_of, shared_range
from landscape.figures.surfaces import (
    Panel,
    PathView,
    contour,
    contours_side_by_side,
    difference_contour,
    diverging_parameters,
    explained_variance,
    parameter_paths,
    path_fidelity,
    path_views,
    slice_1d,
    surface_3d,
    trajectory_matrix,
)
from landscape.figures.training import training_curves

__all__ = [
    "budget_figure",
    "channel_heatmaps",
    "color_of",
    "contour",
    "contours_side_by_side",
    "cross_task_drops",
    "curvature_figures",
    "difference_contour",
    "diverging_parameters",
    "experiment_figures",
    "explained_variance",
    "image_grid",
    "layer_slice",
    "layer_slice_figures",
    "learnable_layers",
    "mark_sal_ball",
    "Panel",
    "parameter_paths",
    "path_fidelity",
    "path_views",
    "PathView",
    "pick_examples",
    "poison_sample",
    "rank_agreement",
    "sal_distributions",
    "sal_heatmaps",
    "selectable_cells",
    "shared_range",
    "slice_1d",
    "spectral_density",
    "surface_3d",
    "task_curves",
    "task_similarity",
    "training_curves",
    "trajectory_matrix",
    "ud_bars",
    "ud_counts",
    "ud_seed_spread",
]
