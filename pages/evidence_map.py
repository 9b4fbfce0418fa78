"""Evidence map: where the studies are (and are not) for two facets, and when they appeared."""

import streamlit as st

from evidence import synthesis
from kb import explorer
from kb.explorer import charts
from pages._common import fetch, labels

st.title("Evidence map")

facets = [*explorer.MAP_FACETS, "warming_bin"]
cols = st.columns(2)
rows = cols[0].selectbox("Rows", facets, index=facets.index("biome"), key="map_rows")
columns = cols[1].selectbox("Columns", facets, index=facets.index("mechanism"), key="map_columns")

studies = fetch("studies")
if rows == columns:
    st.warning("Choose two different facets.")
elif studies.empty:
    st.info("No study yet.")
else:
    vocabularies = {f: list(labels(explorer.FACET_VOCABULARY[f])) for f in explorer.MAP_FACETS}
    counts = explorer.evidence_map_frame(synthesis, studies, rows, columns, vocabularies)
    st.altair_chart(charts.heat_map(counts, rows, columns), width="stretch")
    st.caption(f"Distinct studies per cell ({len(studies)} studies; a study counts in each of its "
               "mechanisms). Cells with 0, in red, are the gaps.")

st.subheader("Publications over time")
timeline = explorer.timeline_frame(studies)
if timeline.empty:
    st.info("No dated publication yet.")
else:
    st.altair_chart(charts.timeline(timeline), width="stretch")
