"""Benchmarks for ``dianne bench NAME``: one module per benchmark.

A module here defines ``NAME`` (the subcommand), ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Every benchmark prints ratios against a reference measured in the same
run; none of them is a pass/fail test.
"""
