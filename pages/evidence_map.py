"""Evidence map: where the studies are (and are not) for two facets, which studies a cell
counts, and when they appeared."""

import streamlit as st

from evidence import synthesis
from kb import explorer
from kb.explorer import charts
from pages._common import all_labels, fetch, labels, table

st.title("Evidence map")

facets = [*explorer.MAP_FACETS, "warming_bin"]
cols = st.columns(2)
rows = cols[0].selectbox("Rows", facets, index=facets.index("biome"), format_func=explorer.facet_title,
                         key="map_rows")
columns = cols[1].selectbox("Columns", facets, index=facets.index("mechanism"),
                            format_func=explorer.facet_title, key="map_columns")

studies = fetch("studies")
names = all_labels()
if rows == columns:
    st.warning("Choose two different facets.")
elif studies.empty:
    st.info("No study yet.")
else:
    vocabularies = {f: list(labels(explorer.FACET_VOCABULARY[f])) for f in explorer.MAP_FACETS}
    counts = explorer.evidence_map_frame(synthesis, studies, rows, columns, vocabularies, names)
    picked = st.altair_chart(charts.heat_map(counts, rows, columns), width="stretch", key="map_cell",
                             on_select="rerun", selection_mode=charts.CELL_SELECTION)
    st.caption(f"Distinct studies per cell ({len(studies)} studies; a study counts in each of its "
               "mechanisms). Cells with 0, in red, are the gaps. Click a cell to list its studies.")
    # a cell picked before the facets changed names other fields: nothing to list then
    cells = [c for c in explorer.chart_selection(picked, charts.CELL_SELECTION) if rows in c and columns in c]
    for cell in cells[:1]:
        inside = explorer.cell_studies(studies, rows, columns, cell[rows], cell[columns])
        where = " × ".join(explorer.label(cell[f], names.get(explorer.FACET_VOCABULARY.get(f, "")))
                           for f in (rows, columns))
        st.markdown(f"**{len(inside)} stud{'y' if len(inside) == 1 else 'ies'} in "
                    f"{explorer.plain(where)}**")
        if not inside.empty:
            shown = explorer.study_table(inside, fetch("sources"), names)
            shown["study"] = shown["study"].map(explorer.study_link)
            table(shown, key="cell_studies", links=("study", "DOI"), vocabularies={},
                  column_config={"study": st.column_config.LinkColumn(
                                     "study", display_text=r"study\?id=(.*)", help="opens the Study page"),
                                 "DOI": st.column_config.LinkColumn("DOI", display_text="doi ↗"),
                                 "warming (°C)": st.column_config.NumberColumn(format="%.1f")})

st.subheader("Publications over time")
timeline = explorer.timeline_frame(studies, names)
if timeline.empty:
    st.info("No dated publication yet.")
else:
    st.caption("Sources per publication year (a source with several studies counts once); years "
               "without one are gaps.")
    st.altair_chart(charts.timeline(timeline), width="stretch")
