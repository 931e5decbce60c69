"""The app's pages, in one table: `app.py` builds its navigation from it, the AppTests and the browser test visit it.

A new page is one file in `pages/` and one row here. Imports nothing (not even streamlit), so tests can read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    """One page of the app.

    Attributes:
        title: the navigation label (and what the page's own `st.title` starts with).
        file: the script, relative to the repository root.
        icon: a Material icon name (`:material/...:`).
        section: the navigation group.
        url_path: the page's URL path ("" for the default page).
    """

    title: str
    file: str
    icon: str
    section: str
    url_path: str

    @property
    def default(self) -> bool:
        return self.url_path == ""


PAGES: tuple[Page, ...] = (
    Page("Overview", "pages/overview.py", ":material/home:", "Start", ""),
    Page("Poison", "pages/poison.py", ":material/blur_on:", "Experiment", "poison"),
    Page("Train", "pages/train.py", ":material/show_chart:", "Experiment", "train"),
    Page("Landscape", "pages/loss_landscape.py", ":material/terrain:", "Analysis", "landscape"),
    Page("SAL", "pages/sal.py", ":material/grid_on:", "Analysis", "sal"),
    Page("UD", "pages/ud.py", ":material/speed:", "Analysis", "ud"),
    Page("Curvature", "pages/curvature.py", ":material/ssid_chart:", "Analysis", "curvature"),
    Page("Cross-task", "pages/cross_task.py", ":material/call_split:", "Analysis", "cross-task"),
)


def page(title: str) -> Page:
    """The page titled `title` (the valid titles are listed otherwise)."""
    for p in PAGES:
        if p.title == title:
            return p
    raise KeyError(f"no page {title!r}; pages: {', '.join(p.title for p in PAGES)}")
