"""Entry point that serves the operator's custom-resource metrics.

Created once by operator-metrics; this file is yours. An operator with an entry point of
its own calls `wiring.start()` from it instead (non-blocking), or, with kopf,
`wiring.register_kopf()` (kopf's watch feeds the metrics).
"""

from pkg.metrics import wiring

if __name__ == "__main__":
    wiring.serve()
