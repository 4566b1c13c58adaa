"""The cocotb testbench of the generated cores (``tb_core.py``; installed as the package
``snnhw.assets_sim``, see ``snnhw.assets`` and ``sim/README.md``)."""
