"""Board flow: boards, Yosys estimates, Vivado scripts, build reports and comparison."""
