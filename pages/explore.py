"""Explore: filter the studies; see them, their pooled effect and where they are."""

import streamlit as st

from kb import KBError, charts, explorer
from pages._common import fetch, options

WARMING, YEARS, DEPTHS = (0.0, 10.0), (1960, 2030), (0, 300)

st.title("SOC × warming evidence")

with st.sidebar:
    st.header("Filters")
    chosen = {}
    for facet, vocabulary in explorer.FACETS.items():
        names, show = options(vocabulary)
        chosen[facet] = st.multiselect(facet.replace("_", " ").capitalize(), names,
                                       format_func=show, key=facet)
    depth = st.slider("Depth sampled (cm)", *DEPTHS, DEPTHS, step=10, key="depth_range")
    warming = st.slider("Warming (°C; 10 = 10 or more)", *WARMING, WARMING, step=0.5, key="warming")
    year = st.slider("Publication year", *YEARS, YEARS, key="year")
    chosen["text"] = st.text_input("Search titles, summaries, quotes", key="text")
    chosen |= {"depth_range": explorer.open_range(depth, DEPTHS),
               "warming": explorer.open_range(warming, WARMING),
               "year": explorer.open_range(year, YEARS)}

filters = explorer.clean_filters(chosen)
responses, show_response = options("responses")
top = st.columns([2, 1, 1])
default = responses.index(explorer.main_response(fetch("effects"), responses))
response = top[1].selectbox("Pooled response", responses, index=default, format_func=show_response,
                            key="response")
method = top[2].selectbox("τ² estimator", explorer.METHODS, key="method")

try:
    studies = fetch("studies", **filters)
    effects = fetch("effects", response=response, **filters)
except KBError as exc:
    st.error(str(exc))
    st.stop()

pooled = explorer.pool_effects(effects, method)
result = pooled.result
cols = st.columns(4)
cols[0].metric("Studies", f"{len(studies):,}")
cols[1].metric("Effects pooled (k)", f"{len(pooled.used):,}")
if result is None:
    cols[2].metric("Pooled lnRR", "—")
    cols[3].metric("I²", "—")
    st.info(f"No pooled {show_response(response)} effect: {pooled.problem}.")
else:
    pct = result.percent_change()
    cols[2].metric("Pooled lnRR", f"{result.estimate:+.3f}", f"{pct[0]:+.1f} %", delta_color="off")
    cols[3].metric("I²", f"{result.i2:.0f} %")
    st.caption(f"{show_response(response)}: {explorer.effect_line(result)}; prediction interval "
               f"{result.pi_low:+.3f} to {result.pi_high:+.3f}; τ² = {result.tau2:.4f} "
               f"({result.method}).")
notes = [f"{pooled.n_without_variance} lnRR without a variance (vote counting only)"
         if pooled.n_without_variance else "",
         f"{pooled.n_other_measure} effects on another scale (SMD/MD) left out" if pooled.n_other_measure else "",
         f"{pooled.n_assumed_variance} of the pooled variances rest on an assumption (see Study)"
         if pooled.n_assumed_variance else ""]
if any(notes):
    st.caption("; ".join(n for n in notes if n) + ".")

SHOWN = 1000
st.subheader("Studies")
if len(studies) > SHOWN:
    st.caption(f"Showing the first {SHOWN:,} of {len(studies):,}; narrow the filters to see the rest.")
table = explorer.study_table(studies.head(SHOWN), fetch("sources"))
st.dataframe(table, hide_index=True, width="stretch", key="studies_table",
             column_config={"DOI": st.column_config.LinkColumn("DOI", display_text="doi ↗"),
                            "warming (°C)": st.column_config.NumberColumn(format="%.1f")})

st.subheader("Study sites")
sites = explorer.map_frame(studies)
if sites.empty:
    st.info("No study in this selection has site coordinates.")
else:
    MAP_POINTS = 5000
    if len(sites) > MAP_POINTS:
        st.caption(f"Mapping the first {MAP_POINTS:,} of {len(sites):,} sites.")
    st.altair_chart(charts.site_map(sites.head(MAP_POINTS)), width="stretch")
