"""UE Landscape engine: unlearnable examples, loss landscapes, SAL and UD.

Crafts unlearnable examples, trains clean vs poisoned models, slices loss landscapes, and measures SAL and
UD (Ye, Su, Qian, "How Far Are We from True Unlearnability?", ICLR 2025).

Pure PyTorch/NumPy/scikit-learn/Plotly; this package never imports streamlit (the app's glue lives in
`landscape.app`, imported only by the pages).
"""

from landscape import reproducible as _reproducible

__version__ = "0.1.0"

_reproducible.apply()  # UE_LANDSCAPE_REPRODUCIBLE=1 pins the CPU kernels' ISA; it must run before torch does
