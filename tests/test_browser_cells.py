"""A real-browser test of the SAL page's cell link: Chromium clicks a cell of the SAL heatmap, the page opens that
layer's 1D slice at that epoch, clean beside poisoned (issue #13, acceptance 3).

It runs `streamlit run app.py` on the shipped demo (tests/test_browser.py's server and waits), finds the cell's
pixel position from Plotly's own axes (`gd._fullLayout`, the `.js-plotly-plot` element's data-to-pixel maps) and
clicks it with the mouse, as a user would. A slice the store does not hold is computed through the page's button.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import pytest

from tests.test_browser import (
    ARTIFACTS,
    PAGE_TIMEOUT_MS,
    assert_no_exception,
    chromium_page,
    wait_idle,
)

pytestmark = pytest.mark.browser

HEATMAP = "SAL per layer and epoch"  # the title of the SAL page's selectable layer x epoch heatmap

# A chart's title as shown (Streamlit wraps the figure's title in <b> tags in the chart's layout).
TITLE_JS = "(g => (((g.layout || {}).title || {}).text || '').replace(/<[^>]*>/g, ''))"
# The viewport position of the centre of cell (layer, epoch) of the run's panel, from Plotly's axes of the chart.
CELL_JS = """([title, run, layer, epoch]) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => TITLE(g).includes(title));
  if (!gd) return null;
  const panel = gd.data.filter(t => t.type === 'heatmap').findIndex(t => t.name === run);
  if (panel < 0) return null;
  const suffix = panel === 0 ? '' : String(panel + 1);
  const xa = gd._fullLayout['xaxis' + suffix], ya = gd._fullLayout['yaxis' + suffix];
  const box = gd.getBoundingClientRect();
  return {x: box.left + xa._offset + xa.d2p(epoch), y: box.top + ya._offset + ya.d2p(layer)};
}""".replace("TITLE", TITLE_JS)

# Title and trace names of every Plotly chart on the page.
CHARTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(g => ({
  title: TITLE(g), names: (g.data || []).map(t => t.name)}))""".replace("TITLE", TITLE_JS)


def click_cell(page, run: str, layer: str, epoch: int) -> None:
    """Scroll the SAL heatmap into view and click the centre of the cell (layer, epoch) of `run`'s panel."""
    chart = page.locator(".stPlotlyChart").filter(has_text=HEATMAP).first
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    point = page.evaluate(CELL_JS, [HEATMAP, run, layer, epoch])
    assert point is not None, f"no {run} panel in the chart titled {HEATMAP!r}: {page.evaluate(CHARTS_JS)}"
    page.mouse.move(point["x"], point["y"])  # hover first: Plotly picks the point under the mouse
    page.wait_for_timeout(200)
    page.mouse.click(point["x"], point["y"])
    wait_idle(page)


def slice_titles(page) -> dict[str, list[str]]:
    return {c["title"]: c["names"] for c in page.evaluate(CHARTS_JS) if c["title"].startswith("1D slice along")}


def open_slice(page, layer: str, epoch: int) -> list[str]:
    """The trace names of the slice of (layer, epoch) on the page, computing it through its button if not stored."""
    title = f"1D slice along {layer} at epoch {epoch}"
    picker = page.locator(".st-key-_w_sal_cell_layer input")  # the selectbox shows its value in an input
    assert picker.input_value() == layer, f"the click did not move the layer picker to {layer}"
    assert page.locator(".st-key-_w_sal_cell_epoch input").input_value() == str(epoch)
    page.get_by_role("heading", name=f"{layer} at epoch {epoch}").wait_for(timeout=PAGE_TIMEOUT_MS)
    if title not in slice_titles(page):
        button = page.locator(".st-key-sal_slice_run button")
        assert button.count() == 1, f"neither the slice nor its button on the page: {slice_titles(page)}"
        button.click()
        page.wait_for_function(f"() => ({CHARTS_JS})().some(c => c.title === {title!r})",
                               timeout=PAGE_TIMEOUT_MS, polling=500)
        wait_idle(page)
    assert_no_exception(page, title)
    slices = slice_titles(page)
    assert list(slices) == [title], slices  # exactly the clicked layer and epoch
    return slices[title]


def test_clicking_a_sal_cell_opens_that_layers_slice_clean_beside_poisoned(tmp_path):
    with chromium_page(tmp_path / "store", "streamlit-cells.log") as (url, page):
        page.goto(f"{url}/sal")
        wait_idle(page)
        page.wait_for_selector(f".stPlotlyChart:has-text('{HEATMAP}')", timeout=PAGE_TIMEOUT_MS)
        assert_no_exception(page, "sal")
        # the pickers open on the first layer at the last epoch: each click moves them elsewhere
        for run, layer, epoch in (("em", "5.weight", 10), ("clean", "12.weight", 3)):
            click_cell(page, run, layer, epoch)
            names = open_slice(page, layer, epoch)
            assert sorted(set(names)) == ["clean", "em"], names  # clean beside poisoned
            page.get_by_role("heading", name=f"Inside {layer}: SAL per output channel").wait_for()
            page.screenshot(path=str(ARTIFACTS / f"sal-cell-{layer}-epoch{epoch}.png"), full_page=True)
