"""`operator-metrics report`: usage of the custom resources per namespace (or label) over a
period, read from Prometheus (the metering recording rules when present, else the raw
families) and written as a table, CSV, JSON or one self-contained HTML page.

Split so that only `prometheus` does I/O: the queries, the integration over time and the
outputs are pure functions of what it returns.
"""
