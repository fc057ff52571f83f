"""lvm-workbench: the application (CLI, plugin host, Textual TUI) around `lvm_core`.

Plugin authors need only two names from here::

    from workbench import hookimpl, Param
"""

from lvm_core.params import Param

from .hookspecs import hookimpl

__all__ = ["hookimpl", "Param"]
