"""Entry point that serves the operator's custom-resource metrics.

Created once by operator-metrics; this file is yours. In an operator that already has an entry
point, call `wiring.start()` from it instead (non-blocking).
"""

from pkg.metrics import wiring

if __name__ == "__main__":
    wiring.serve()
