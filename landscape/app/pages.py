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
        default: whether it is the page the app opens on (at the URL path "").
    """

    title: str
    file: str
    icon: str
    section: str
    default: bool = False

    @property
    def url_path(self) -> str:
        """The page's URL path: "" for the default page, else its file's name without `.py`.

        The file's name, because a fresh server runs in Streamlit's legacy `pages/` mode until the first
        `st.navigation` call, and there the file's name is the page's URL: a page opened by its URL (a bookmark,
        a tab reconnecting to a restarted server) whose `st.Page` URL were another got a "Page not found" dialog.
        """
        return "" if self.default else self.file.rsplit("/", 1)[-1].removesuffix(".py")


PAGES: tuple[Page, ...] = (
    Page("Overview", "pages/overview.py", ":material/home:", "Start", default=True),
    Page("Poison", "pages/poison.py", ":material/blur_on:", "Experiment"),
    Page("Train", "pages/train.py", ":material/show_chart:", "Experiment"),
    Page("Landscape", "pages/loss_landscape.py", ":material/terrain:", "Analysis"),
    Page("SAL", "pages/sal.py", ":material/grid_on:", "Analysis"),
    Page("UD", "pages/ud.py", ":material/speed:", "Analysis"),
    Page("Curvature", "pages/curvature.py", ":material/ssid_chart:", "Analysis"),
    Page("Cross-task", "pages/cross_task.py", ":material/call_split:", "Analysis"),
)


def page(title: str) -> Page:
    """The page titled `title` (the valid titles are listed otherwise)."""
    for p in PAGES:
        if p.title == title:
            return p
    raise KeyError(f"no page {title!r}; pages: {', '.join(p.title for p in PAGES)}")
