"""An example lvm-workbench plugin: the angular loss. See plugin.py."""

__version__ = "0.1.0"
