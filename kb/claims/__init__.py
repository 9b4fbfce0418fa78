"""Claims and their evidence: the claim–evidence graph (:mod:`kb.claims.graph`), contested
and weak claims, what a new record changes, and the rows of synthesis tables.

This package sits above the kb core and below the CLI and the explorer. Importing it is
cheap; networkx and the statistics load with :mod:`kb.claims.graph`.
"""

#: formats the graph exports to (``soc-kb export --format ...``)
GRAPH_FORMATS = ("graphml", "json-graph", "dot")
