"""Seeing the history as a whole: the compare table, the best version by a metric, and
the self-contained HTML report (lineage graph, metric charts, table, diff heatmaps,
storage).

Not named ``report``/``compare``: importing ``adaptvc.report`` would shadow the
:func:`adaptvc.report` function on the package (as ``adapter_diff`` does for ``diff``).

- :mod:`~adaptvc.overview.table`: versions → rows of hyper-parameters and metrics; best;
- :mod:`~adaptvc.overview.layout`: the layered layout of the lineage graph;
- :mod:`~adaptvc.overview.svg`: inline SVG (lineage, line charts, heatmaps, bars);
- :mod:`~adaptvc.overview.page`: the HTML page and what goes in it.
"""
