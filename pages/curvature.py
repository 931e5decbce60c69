"""Curvature: λ_max and the trace of every layer's Hessian block per epoch, beside SAL, clean vs poisoned."""

import dataclasses

import streamlit as st

from landscape.app import state
from landscape.app.views import curvature
from landscape.app.views import study as views

st.title("Curvature: how sharp is each layer")
st.caption("λ_max (top eigenvalue) and trace of each layer's block of the loss Hessian, from exact Hessian-vector "
           "products on the run's own training images (Lanczos; deflated Hutchinson with its standard error), and "
           "the eigenvalue density (stochastic Lanczos quadrature, as PyHessian's ESD). Do sharp layers by SAL have "
           "high curvature? The Spearman rank agreement per epoch answers it for each run.")
spec = state.sidebar()
study = views.study_or_stop("curvature", spec)
method = st.selectbox("Poisoned run", study.methods, key="curvature_method") if len(study.methods) > 1 \
    else study.methods[0]
st.caption(f"SAL source: {study.label}. Curvature: the sidebar's runs.")
curvature.curvature_view(dataclasses.replace(spec, method=method), study, method)
