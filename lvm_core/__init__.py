"""lvm_core: the library behind lvm-workbench.

Data (article stores, windows, splits), models, training, evaluation and checkpoints.
It never imports `workbench`, `lvm_plugins` or `textual` (tests/test_layering.py checks it):
the UI and the headless console are two consumers of the same core.
"""

__version__ = "0.1.0"
