"""Synthesis: pooled effects by group, forest and funnel plots, leave-one-out, downloads."""

import streamlit as st

import evidence
from evidence import synthesis
from kb import explorer
from kb.explorer import charts
from kb.render import render_table
from pages._common import compute, fetch, options

st.title("Synthesis")

cols = st.columns([2, 1, 1])
by = cols[0].multiselect("Group by", explorer.GROUPINGS, default=["biome"], key="by")
responses, show_response = options("responses")
default = responses.index(explorer.main_response(fetch("response_counts"),
                                                 responses))
response = cols[1].selectbox("Response", responses, index=default, format_func=show_response,
                             key="syn_response")
method = cols[2].selectbox("τ² estimator", explorer.METHODS, key="syn_method")

if not by:
    st.info("Choose at least one grouping.")
    st.stop()
rows = compute(explorer.db_path(), "kb.explorer.synthesis_rows", response=response)
if rows.empty:
    st.info(f"No effect and no stated direction for {show_response(response)} yet.")
    st.stop()
try:
    table = synthesis.synthesize(rows, by=by, response=response, method=method)
except evidence.EvidenceError as exc:
    st.error(explorer.plain(str(exc)))
    st.stop()

st.subheader(f"{show_response(response)} by {', '.join(by)}")
st.dataframe(table, hide_index=True, width="stretch", key="synthesis_table", column_config={
    **{c: st.column_config.NumberColumn(format="%+.3f") for c in
       ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")},
    **{c: st.column_config.NumberColumn(format="%+.1f %%") for c in
       ("percent_change", "percent_change_low", "percent_change_high")},
    "tau2": st.column_config.NumberColumn("τ²", format="%.4f"),
    "i2": st.column_config.NumberColumn("I²", format="%.0f %%"),
    "q_pvalue": st.column_config.NumberColumn("p (Q)", format="%.3g"),
    "sign_test_pvalue": st.column_config.NumberColumn("p (sign test)", format="%.3g")})
st.caption("Estimates are lnRR (warmed vs control) with 95 % CI and prediction interval; percent "
           "change is 100·(exp(lnRR) − 1). k counts pooled effects, n_studies all studies "
           "(direction-only ones count in the votes). Effects flagged 'part of …' (finer breakdowns "
           "of another effect, e.g. the COSORE months of a season) are left out: the same data again.")
down = st.columns(3)
for col, (fmt, ext, mime) in zip(down, [("csv", "csv", "text/csv"), ("markdown", "md", "text/markdown"),
                                        ("latex", "tex", "application/x-tex")], strict=True):
    col.download_button(f"Download {fmt}", render_table(table, fmt, rounding=3), key=f"down_{fmt}",
                        file_name=f"synthesis-{response}.{ext}", mime=mime)

st.subheader("One group in detail")
groups = explorer.group_labels(table, by)
group = st.selectbox("Group", ["all groups together", *groups], key="group")
effects = explorer.group_effects(rows, by, None if group == "all groups together" else group)
pooled = explorer.pool_effects(effects, method)
if pooled.result is None:
    st.info(f"No forest plot: {pooled.problem}.")
    st.stop()
result = pooled.result
st.markdown(f"**Pooled:** {explorer.plain(explorer.effect_line(result))}; k = {result.k}, "
            f"I² = {result.i2:.0f} %, τ² = {result.tau2:.4f}, prediction interval "
            f"{result.pi_low:+.3f} to {result.pi_high:+.3f}.")
if result.k > pooled.n_studies:
    st.caption(f"The {result.k} effects come from {pooled.n_studies} "
               f"stud{'y' if pooled.n_studies == 1 else 'ies'} and are pooled as if independent "
               "(several effects of one study are not), so the CI is too narrow.")
if pooled.n_assumed_variance:
    st.caption(f"{pooled.n_assumed_variance} of these variances rest on an assumption; hover a "
               "study row for its variance note (also on the Study page).")
forest = explorer.forest_frame(effects, result.weights)
st.altair_chart(charts.forest_plot(forest, explorer.summary_rows(result)), width="stretch")

left, right = st.columns(2)
with left:
    st.markdown("**Funnel plot**")
    try:
        egger = evidence.egger_test(effects["yi"], effects["vi"], method=method)
        filled = evidence.trim_and_fill(effects["yi"], effects["vi"], method=method)
    except evidence.EvidenceError as exc:
        st.info(f"No small-study tests: {exc}")
        points, funnel = explorer.funnel_frame(effects, result.estimate)
    else:
        points, funnel = explorer.funnel_frame(effects, result.estimate, filled.points)
        st.caption(f"{explorer.egger_line(egger)}. Trim-and-fill "
                   f"({filled.estimator}): {filled.k0} filled on the {filled.side}; adjusted lnRR "
                   f"{filled.estimate:+.3f} ({explorer.percent(filled.estimate):+.1f} %), 95 % CI "
                   f"{filled.ci_low:+.3f} to {filled.ci_high:+.3f}.")
    st.altair_chart(charts.funnel_plot(points, funnel, result.estimate), width="stretch")
with right:
    st.markdown("**Leave one out**")
    try:
        loo = evidence.leave_one_out(effects["yi"], effects["vi"], method=method)
    except evidence.EvidenceError as exc:
        st.info(f"No leave-one-out: {exc}")
    else:
        loo = explorer.leave_one_out_frame(loo, forest["label"])
        st.altair_chart(charts.leave_one_out(loo, result.estimate), width="stretch")
