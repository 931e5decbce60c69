"""UE Landscape engine: craft unlearnable examples, train clean vs poisoned models, slice loss landscapes,
and measure SAL and UD (Ye, Su, Qian, "How Far Are We from True Unlearnability?", ICLR 2025).

Pure PyTorch/NumPy/scikit-learn/Plotly; this package never imports streamlit (the app's glue lives in
`landscape.ui`, imported only by the pages).
"""

__version__ = "0.1.0"
