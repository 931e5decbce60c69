"""UE Landscape: `streamlit run app.py`. Page config and the router; every page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="UE Landscape", page_icon=":material/landscape:", layout="wide")
st.navigation(
    {
        "Start": [st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True)],
        "Experiment": [
            st.Page("pages/poison.py", title="Poison", icon=":material/blur_on:"),
            st.Page("pages/train.py", title="Train", icon=":material/show_chart:"),
        ],
        "Analysis": [
            st.Page("pages/loss_landscape.py", title="Landscape", icon=":material/terrain:", url_path="landscape"),
            st.Page("pages/sal.py", title="SAL", icon=":material/grid_on:"),
            st.Page("pages/ud.py", title="UD", icon=":material/speed:"),
            st.Page("pages/cross_task.py", title="Cross-task", icon=":material/call_split:", url_path="cross-task"),
        ],
    }
).run()
