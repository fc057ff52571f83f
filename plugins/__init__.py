"""Built-in plugins of lvm-workbench, installed as the package `lvm_plugins`.

Every module here is registered through the same hooks a third-party plugin uses
(workbench/hookspecs.py); there is no private back door.
"""
