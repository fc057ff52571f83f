"""lvm-workbench: the application (CLI, plugin host, Textual TUI) around `lvm_core`.

Plugin authors import from `workbench.api` (every public name, listed in its `__all__`);
the two names every plugin needs are here as well::

    from workbench import hookimpl, Param
"""

from lvm_core.params import Param

from .hookspecs import hookimpl

__all__ = ["hookimpl", "Param"]
