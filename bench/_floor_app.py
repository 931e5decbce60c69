"""The floor of `bench/app_latency.py`: the smallest Streamlit app that draws one plotly chart.

Its first chart is what Streamlit itself costs here (interpreter, imports, server start, the browser loading the
frontend, one script run and one plotly figure), measured in the same run as the real app.
"""

import plotly.graph_objects as go
import streamlit as st

st.title("Floor")
st.plotly_chart(go.Figure(go.Scatter(x=[0, 1, 2], y=[1, 0, 2])))
