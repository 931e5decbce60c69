"""UE Landscape: `streamlit run app.py`. Page config and the router, from the one table `landscape.app.pages.PAGES`."""

import streamlit as st

from landscape.app import warmup
from landscape.app.pages import PAGES

st.set_page_config(page_title="UE Landscape", page_icon=":material/landscape:", layout="wide")
sections: dict[str, list] = {}
for p in PAGES:
    sections.setdefault(p.section, []).append(st.Page(p.file, title=p.title, icon=p.icon, default=p.default,
                                                      url_path=p.url_path or None))
with warmup.page_run():  # later pages' imports wait for an idle moment (landscape.app.warmup)
    st.navigation(sections).run()
