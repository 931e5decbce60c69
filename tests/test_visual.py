"""What a visual review of every page found (screenshots at 1366x768 and 1280x720 on the shipped demo), one test
per fix: the figure builders are pure, so most assert on the Plotly figure; the rest are AppTests of the demo."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go

from landscape import figures
from tests.test_app import no_exception, open_page

PLOTLY_MARGIN = {"t": 100, "b": 80}  # Plotly's default top and bottom margins, px


def plot_px(fig: go.Figure) -> float:
    """Height of the plot area (figure height less the top and bottom margins), px."""
    m = fig.layout.margin
    return fig.layout.height - (m.t if m.t is not None else PLOTLY_MARGIN["t"]) - (
        m.b if m.b is not None else PLOTLY_MARGIN["b"])


def subplot_titles(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def chart_layouts(at) -> list[dict]:
    return [json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")]


def path(n: int = 3, *, real: float = 1.0) -> figures.PathView:
    e = np.arange(n)
    return figures.PathView(epochs=e, a=e * 1.0, b=e * 0.5, real_loss=np.full(n, real), surface_loss=np.full(n, real),
                            residual=np.ones(n))


# ------------------------------------------------------------------------------------------------- colours


def test_a_shipped_method_has_one_colour_whatever_else_a_figure_holds():
    # by slot, ops was red beside clean (SAL, UD pages) and orange beside em (UD over seeds, cross-task)
    alone = figures.color_of("ops")
    assert alone == figures.color_of("ops") == figures.color_of("ops")
    assert figures.color_of("em") == "#d62728"  # the demo's poisoned run stays red
    budgets = figures.budget_figure({"ops": {"l0": 1.0}, "em": {"l0": 2.0}})  # the order the session looked at them
    assert list(budgets.data[0].marker.color) == [alone, figures.color_of("em")]


def test_every_shipped_method_has_its_own_colour_and_none_is_cleans():
    from landscape.figures.style import METHOD_COLORS
    from landscape.poisons import POISONS

    shipped = [n for n in POISONS.names() if n in METHOD_COLORS]
    assert len(shipped) >= 9, shipped  # the table names the shipped methods (a stale table shrinks this list)
    colours = [figures.color_of(n) for n in shipped]
    assert len(set(colours)) == len(colours) and figures.color_of("clean") not in colours
    # a method without an entry (a user's own, one added later): a colour of its own, the same in every figure
    for mine in ("mine", "new-method", "x"):
        assert figures.color_of(mine) not in colours and figures.color_of(mine) != figures.color_of("clean")
        # the same in two figures holding other runs (by slot among a figure's names it was not)
        alone = figures.ud_bars({mine: 0.5}).data[0].marker.color[0]
        beside = figures.ud_bars({"x2": 0.4, "clean": 1.0, "yy": 0.3, mine: 0.5}).data[0].marker.color[3]
        assert figures.color_of(mine) == alone == beside


def test_path_fidelity_colours_each_path_by_its_run():
    # two planes (one around each model): the paths are named "clean: clean" and "em: em"; by slot the clean path
    # took the first poison colour
    fig = figures.path_fidelity({"clean: clean": path(), "em: em": path()})
    assert fig.data[0].line.color == figures.color_of("clean") and fig.data[3].line.color == figures.color_of("em")


# ------------------------------------------------------------------------------------------------- figures


def test_budget_panels_have_short_titles_and_their_units_on_the_axes():
    fig = figures.budget_figure({"em": {"linf": 0.25, "l2": 1.5, "l0": 52.5, "psnr": 14.5}, "ops": {"l0": 1.0}})
    # a quarter of the page's width holds about 20 characters: "PSNR (dB, higher = less visible)" was cut off
    assert all(len(t) <= 14 for t in subplot_titles(fig)), subplot_titles(fig)
    units = [fig.layout[f"yaxis{i if i > 1 else ''}"].title.text for i in range(1, 5)]
    assert units[0] and "dB" in units[3] and "higher = less visible" in units[3], units
    assert list(fig.data[0].text) == ["0.25", ""]  # a missing value is no bar and no "nan" label


def test_heatmaps_leave_their_colour_bar_room_for_its_ticks():
    layers, epochs = [f"{i}.weight" for i in range(6)], np.arange(1, 11)
    runs = {"clean": np.ones((10, 6)), "em": np.ones((10, 6)) * 2}
    fig = figures.sal_heatmaps(runs, layers, epochs, log=True)
    assert plot_px(fig) >= 200, plot_px(fig)  # was 128 px: the colour bar ~50 px, "-0.5 -1 -1.5 -2" overlapping
    assert fig.layout.coloraxis.colorbar.title.side == "right"  # the title beside the bar, not eating its length
    assert plot_px(figures.learnable_layers({"clean": np.ones((10, 6), bool)}, layers, epochs)) >= 200
    wide = figures.channel_heatmaps({"clean": np.ones((2, 512))}, "fc", np.array([1, 2]))
    assert wide.layout.height <= 700


def test_contour_legend_sits_below_the_alpha_axis_title():
    a = np.linspace(-1, 1, 5)
    fig = figures.contour(a, a, np.ones((5, 5)), paths={"clean": path()}, markers={"clean": (0, 0), "em": (1, 0),
                                                                                   "init": (0, 1)})
    # ticks and the axis title take ~55 px under the plot; at y=-0.15 the legend (45 px down) covered the title
    assert -fig.layout.legend.y * plot_px(fig) >= 60 and fig.layout.legend.yanchor == "top"


def test_3d_surface_legend_does_not_sit_on_the_colour_bar():
    a = np.linspace(-1, 1, 5)
    fig = figures.surface_3d(a, a, np.ones((5, 5)), paths={"clean": path(), "em": path()}, log=True)
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y <= 0  # was the default: right, on the bar


def test_path_fidelity_names_the_value_it_plots():
    fig = figures.path_fidelity({"clean": path(real=0.9)}, label="accuracy")
    assert "real accuracy" in subplot_titles(fig)[1] and "loss" not in subplot_titles(fig)[1]
    assert [t.name for t in fig.data] == ["clean residual", "clean real accuracy", "clean surface accuracy"]
    assert fig.layout.yaxis.title.text and fig.layout.yaxis2.title.text == "accuracy"
    assert figures.path_fidelity({"clean": path()}).data[1].name == "clean real loss"  # the default


def test_cross_task_figures_write_metrics_as_readers_do():
    rows = [{"task": t, "method": "em", "metric": m, "drop": 0.1}
            for t, m in (("classify", "accuracy"), ("segment", "miou"), ("edges", "mse"), ("reconstruct", "psnr"))]
    drops = figures.cross_task_drops(rows)
    assert list(drops.data[0].x) == ["classify (accuracy)", "segment (mIoU)", "edges (MSE)", "reconstruct (PSNR (dB))"]
    curves = figures.task_curves({r["task"]: {"clean": np.ones(3)} for r in rows},
                                 {r["task"]: r["metric"] for r in rows})
    assert subplot_titles(curves) == ["classify: accuracy", "segment: mIoU", "edges: MSE", "reconstruct: PSNR (dB)"]
    assert curves.layout.yaxis2.title.text == "mIoU"


def test_report_headings_are_demoted_below_the_pages_own():
    from landscape.app.views.bench import demote_headings

    md = "# Title\n\ntext # not a heading\n## Part\n### Cell\n#### Deep\n#hashtag"
    assert demote_headings(md) == "#### Title\n\ntext # not a heading\n##### Part\n###### Cell\n###### Deep\n#hashtag"


def test_plane_titles_name_the_plane_not_its_internal_kind():
    from landscape.app.views.surfaces import plane_title

    assert plane_title("loss", "pca") == "loss on the PCA plane of both trajectories"
    assert "initialisation" in plane_title("accuracy", "interp") and "interp" not in plane_title("loss", "interp")


# ------------------------------------------------------------------------------------------------- the demo pages


def test_ud_page_shows_the_shipped_reports_collapsed():
    """The shipped reports ran ~30,000 px down the UD page, the regime study's "# title" larger than the page's."""
    at = open_page("pages/ud.py")
    no_exception(at)
    reports = [e for e in at.expander if e.label.startswith("Report and table of ")]
    assert {e.label for e in reports} == {"Report and table of regime", "Report and table of ud_digits_cnn"}
    assert not any(e.proto.expanded for e in reports)
    inside = [m.value for e in reports for m in e.markdown]
    assert any(v.startswith("#### Regime study") for v in inside), [v[:40] for v in inside]
    assert not any(m.value.lstrip().startswith("# ") for m in at.markdown), "a report's h1 on the page"


def test_poison_about_box_shows_the_docstring_without_its_source_indent():
    at = open_page("pages/poison.py")
    no_exception(at)
    doc = at.text[0].value
    lines = [line for line in doc.splitlines()[1:] if line.strip()]
    assert lines and min(len(line) - len(line.lstrip()) for line in lines) == 0, doc[:300]


def test_sal_page_accuracy_variant_colour_bar_names_its_unit():
    at = open_page("pages/sal.py")
    at.radio(key="sal_variant").set_value("accuracy").run()
    no_exception(at)
    heat = chart_layouts(at)[0]
    assert heat["coloraxis"]["colorbar"]["title"]["text"] == "accuracy SAL (pp)", heat["coloraxis"]


def test_landscape_page_titles_the_pca_plane_readably():
    at = open_page("pages/loss_landscape.py")
    no_exception(at)
    titles = [layout.get("title", {}).get("text", "") for layout in chart_layouts(at)]
    assert "loss on the PCA plane of both trajectories" in titles, titles
