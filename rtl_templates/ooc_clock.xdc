# snnhw: clock constraint of an out-of-context core run (generated; template rtl_templates/ooc_clock.xdc)
create_clock -name clk -period ${period_ns} [get_ports clk]
