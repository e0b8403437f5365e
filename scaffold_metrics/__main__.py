"""`python -m scaffold_metrics`: the `operator-metrics` command, for environments without the
console script on PATH."""

from .cli import main

main()
