"""Explore: filter the studies; see them, their pooled effect and where they are."""

import streamlit as st

from kb import KBError, explorer
from kb.explorer import charts
from pages._common import all_labels, compute, fetch, options

WARMING, YEARS, DEPTHS, DURATIONS = (0.0, 10.0), (1960, 2030), (0, 300), (0.0, 30.0)

st.title("SOC × warming evidence")

with st.sidebar:
    st.header("Filters")
    chosen = {}
    for facet in explorer.FILTER_FACETS:
        names, show = options(explorer.FACET_VOCABULARY[facet])
        chosen[facet] = st.multiselect(facet.replace("_", " ").capitalize(), names,
                                       format_func=show, key=facet)
    depth = st.slider("Depth sampled (cm)", *DEPTHS, DEPTHS, step=10, key="depth_range")
    warming = st.slider("Warming (°C; 10 = 10 or more)", *WARMING, WARMING, step=0.5, key="warming")
    duration = st.slider("Duration (years; 30 = 30 or more)", *DURATIONS, DURATIONS, step=0.5,
                         key="duration")
    year = st.slider("Publication year", *YEARS, YEARS, key="year")
    chosen["include_missing"] = st.checkbox(
        "Include studies without a value", key="include_missing",
        help="A range above keeps the studies that state no value for it (no depth, warming, …)")
    chosen["text"] = st.text_input("Search titles, summaries, quotes", key="text")
    chosen |= {"depth_range": explorer.open_range(depth, DEPTHS),
               "warming": explorer.open_range(warming, WARMING),
               "duration": explorer.open_range(duration, DURATIONS),
               "year": explorer.open_range(year, YEARS)}

filters = explorer.clean_filters(chosen)
path = explorer.db_path()
responses, show_response = options("responses")
top = st.columns([2, 1, 1, 1])
default = responses.index(explorer.main_response(fetch("response_counts"), responses))
response = top[1].selectbox("Pooled response", responses, index=default, format_func=show_response,
                            key="response")
model = top[2].selectbox("Model", explorer.MODELS, key="model",
                         help="multilevel: effects nested in sites nested in sources (default); "
                              "independent: every effect as independent; robust: CR2 by source")
method = top[3].selectbox("τ² estimator", explorer.MODEL_METHODS[model], key="method")

SHOWN, MAP_POINTS = 1000, 5000
try:
    n_studies = fetch("count_studies", **filters)
    left_out = explorer.missing_note(fetch("missing_values", **filters), filters)
    studies = fetch("studies", limit=SHOWN, **filters)
    effects = compute(path, "kb.explorer.effects_to_pool", response=response, **filters)
    sites, n_located = fetch("site_points", limit=MAP_POINTS, **filters)
except KBError as exc:
    st.error(explorer.plain(str(exc)))
    st.stop()
if left_out:
    st.sidebar.caption(left_out)

pooled = explorer.pool_effects(effects, method, model)
result = pooled.result
cols = st.columns(4)
cols[0].metric("Studies", f"{n_studies:,}")
cols[1].metric("Effects · sites · sources", "—" if result is None else
               f"{result.k:,} · {result.n_sites:,} · {result.n_sources:,}")
if result is None:
    cols[2].metric("Pooled lnRR", "—")
    cols[3].metric("I²", "—")
    st.info(f"No pooled {show_response(response)} effect: {explorer.plain(pooled.problem)}.")
else:
    pct = explorer.percents(result)
    cols[2].metric("Pooled lnRR", f"{result.estimate:+.3f}", f"{pct[0]:+.1f} %", delta_color="off")
    cols[3].metric("I²", "—" if result.i2 != result.i2 else f"{result.i2:.0f} %")
    spread = ("" if result.pi_low != result.pi_low else
              f"; prediction interval {result.pi_low:+.3f} to {result.pi_high:+.3f}")
    st.caption(f"{show_response(response)}, warmed vs control: {explorer.effect_line(result)}"
               f"{spread}; τ² = {result.tau2:.4f} ({result.method}). "
               f"{explorer.behind_line(result)}.")
notes = [f"{pooled.n_without_variance:,} lnRR without a variance (vote counting only)"
         if pooled.n_without_variance else "",
         f"{pooled.n_other_measure:,} effects on another scale (SMD/MD) left out" if pooled.n_other_measure else "",
         f"{pooled.n_breakdowns:,} effects left out as finer breakdowns of another effect (quality "
         "flag 'part of …', e.g. months of a season: the same data again)" if pooled.n_breakdowns else "",
         f"{pooled.n_assumed_variance:,} of the pooled variances rest on an assumption (its note is "
         "on the Study page)" if pooled.n_assumed_variance else ""]
notes += list(result.notes) if result is not None else []
if any(notes):
    st.caption("Note: " + explorer.plain("; ".join(n for n in notes if n)) + ".")

st.subheader("Studies")
if n_studies > SHOWN:
    st.caption(f"Showing the first {SHOWN:,} of {n_studies:,}; narrow the filters to see the rest.")
labels = all_labels()
table = explorer.study_table(studies, fetch("sources"), labels)
table["study"] = table["study"].map(explorer.study_link)
st.dataframe(table, hide_index=True, width="stretch", key="studies_table", placeholder="",
             column_config={"study": st.column_config.LinkColumn(
                                "study", display_text=r"study\?id=(.*)", help="opens the Study page"),
                            "DOI": st.column_config.LinkColumn("DOI", display_text="doi ↗"),
                            "warming (°C)": st.column_config.NumberColumn(format="%.1f")})

st.subheader("Study sites")
if sites.empty:
    st.info("No study in this selection has site coordinates.")
else:
    if n_located > len(sites):
        st.caption(f"Mapping the first {len(sites):,} of {n_located:,} located studies; click a "
                   "site to open its study.")
    else:
        st.caption(f"{n_located:,} of the {n_studies:,} studies have site coordinates; click a "
                   "site to open its study.")
    picked = st.altair_chart(charts.site_map(explorer.map_frame(sites, labels)), width="stretch",
                             key="site_map", on_select="rerun", selection_mode=charts.SITE_SELECTION)
    chosen = explorer.chart_selection(picked, charts.SITE_SELECTION)
    if chosen:
        st.switch_page("pages/study.py", query_params={"id": chosen[0]["study"]})
