"""Example plugin package for lvm-workbench: the CM gate, the repeat_rate diagnostic and the
mean_residual model (see plugin.py and the README)."""

__version__ = "0.1.0"
