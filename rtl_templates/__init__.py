"""Vivado TCL/XDC templates bundled with snnhw (data only; installed as the package
``snnhw.assets_templates``, see ``snnhw.assets``)."""
