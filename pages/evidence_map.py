"""Evidence map: where the studies are (and are not) for two facets, and when they appeared."""

import streamlit as st

from kb import charts, explorer
from pages._common import fetch, labels

st.title("Evidence map")

facets = [*explorer.MAP_VOCABULARIES, "warming_bin"]
cols = st.columns(2)
rows = cols[0].selectbox("Rows", facets, index=facets.index("biome"), key="map_rows")
columns = cols[1].selectbox("Columns", facets, index=facets.index("mechanism"), key="map_columns")

studies = fetch("studies")
synthesis = explorer.synthesis_module()
if rows == columns:
    st.warning("Choose two different facets.")
elif synthesis is None:
    st.info("The study-count heat map is not available yet: it needs "
            "`evidence.synthesis.evidence_map`, which this version does not have.")
elif studies.empty:
    st.info("No study yet.")
else:
    vocabularies = {f: list(labels(v)) for f, v in explorer.MAP_VOCABULARIES.items()}
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
