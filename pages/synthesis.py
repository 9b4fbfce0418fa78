"""Synthesis: pooled effects by group (nested in sites and sources by default), certainty with
its reasons, sensitivity to the assumptions, moderators, and one group in detail."""

import streamlit as st

import evidence
from evidence import synthesis
from kb import KBError, explorer
from kb.claims import report
from kb.claims.notes import caption, export_notes, synthesis_notes, table_layout
from kb.explorer import charts
from kb.render import table_bytes
from pages._common import compute, fetch, options
from pages._common import table as show_table

st.title("Synthesis")

cols = st.columns([2, 1, 1, 1])
by = cols[0].multiselect("Group by", explorer.GROUPINGS, default=["biome"], key="by",
                         format_func=explorer.facet_title)
responses, show_response = options("responses")
default = responses.index(explorer.main_response(fetch("response_counts"), responses))
response = cols[1].selectbox("Response", responses, index=default, format_func=show_response,
                             key="syn_response")
model = cols[2].selectbox("Model", explorer.MODELS, key="syn_model",
                          help="multilevel: effects nested in sites nested in sources (default); "
                               "independent: every effect as independent; robust: CR2 by source")
method = cols[3].selectbox("τ² estimator", explorer.MODEL_METHODS[model], key="syn_method")

if not by:
    st.info("Choose at least one grouping.")
    st.stop()
path = explorer.db_path()
rows = compute(path, "kb.explorer.synthesis_rows", response=response)
if rows.empty:
    st.info(f"No effect and no stated direction for {show_response(response)} yet.")
    st.stop()
try:
    table = synthesis.synthesize(rows, by=by, response=response, method=method, model=model)
except evidence.EvidenceError as exc:
    st.error(explorer.plain(str(exc)))
    st.stop()

st.subheader(f"{show_response(response)} by {', '.join(by)}")
show_table(table, key="synthesis_table", column_config={  # labels; a gap is "—" or empty
    **{c: st.column_config.NumberColumn(format="%+.3f") for c in
       ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")},
    **{c: st.column_config.NumberColumn(format="%+.1f %%") for c in
       ("percent_change", "percent_change_low", "percent_change_high")},
    **{c: st.column_config.NumberColumn(c.replace("sigma2", "σ²"), format="%.4f") for c in
       ("tau2", "sigma2_source", "sigma2_site", "sigma2_effect")},
    "i2": st.column_config.NumberColumn("I²", format="%.0f %%"),
    "q_pvalue": st.column_config.NumberColumn("p (Q)", format="%.3g"),
    "sign_test_pvalue": st.column_config.NumberColumn("p (sign test)", format="%.3g"),
    "certainty_reasons": st.column_config.TextColumn("why this certainty", width="large"),
    "notes": st.column_config.TextColumn("notes", width="medium")})
notes = synthesis_notes(rows, table, by, model, method, None)
st.caption("Estimates are lnRR (warmed vs control) with 95 % CI and prediction interval; percent "
           "change is 100·(exp(lnRR) − 1). k_effects, n_sites and n_sources say what stands "
           "behind each pooled number; the vote columns count study records.")
st.caption("\n\n".join(explorer.plain(note) for note in notes))

stem = explorer.synthesis_file_stem(response, by, model)
layout = table_layout(table, compute(path, "kb.claims.notes.facet_labels", facets=tuple(by)),
                      export_notes(rows, table, by, model, method, None),
                      caption(show_response(response), by, model, method))
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
down = st.columns(7)
for col, (fmt, label, ext, mime) in zip(down[:5], [
        ("csv", "CSV", "csv", "text/csv"), ("markdown", "Markdown", "md", "text/markdown"),
        ("latex", "LaTeX", "tex", "application/x-tex"), ("html", "HTML", "html", "text/html"),
        ("xlsx", "XLSX", "xlsx", XLSX)], strict=True):
    col.download_button(f"Download {label}", table_bytes(table, fmt, **layout), key=f"down_{fmt}",
                        file_name=f"{stem}.{ext}", mime=mime)


def report_file(fmt: str):
    """The report, made only when its button is pressed (it runs the sensitivity analysis)."""
    def make() -> bytes:
        with explorer.open_base(path) as base:
            return report.build_report(base, response, by, model=model, method=method).write(fmt)
    return make


for col, fmt, mime in ((down[5], "html", "text/html"), (down[6], "pdf", "application/pdf")):
    col.download_button(f"Report ({fmt.upper()})", report_file(fmt), key=f"report_{fmt}",
                        file_name=report.report_file_name(response, by, model, fmt), mime=mime,
                        help="Methods, table, certainty, forest and funnel plots, sensitivity, "
                             "references and the query that reproduces it (soc-kb report)")

with st.expander("Sensitivity to the assumptions"):
    st.caption("Each group re-run with the SRDB error read as an SD (n = 3, 4, 6), without "
               "confounded or flagged contrasts, and with one site left out at a time. A group is "
               "fragile when a plausible alternative changes its sign, significance or certainty.")
    if st.toggle("Run the sensitivity analysis", key="run_sensitivity"):
        try:
            result = compute(path, "kb.claims.sensitivity.sensitivity_table", response=response,
                             by=tuple(by), model=model, method=method)
        except KBError as exc:
            st.error(explorer.plain(str(exc)))
        else:
            show_table(result.to_frame(), key="sensitivity_table")
            fragile = result.groups[result.groups["fragile"]]
            for row in fragile.to_dict(orient="records"):
                group = " · ".join(str(row[f]) for f in by)
                st.warning(explorer.plain(f"Fragile: {group} — {row['fragile_under']}"))
            if fragile.empty:
                st.success("No group changes its conclusion under these alternatives.")

with st.expander("Moderators (meta-regression)"):
    moderator = st.selectbox("Moderator", ["warming_c", "duration_years", "depth_mid_cm", "biome",
                                           "ecosystem"], key="moderator")
    if model == "robust":
        st.info("Meta-regression is fitted with the multilevel or the independent model.")
    else:
        try:
            fit = evidence.moderator_analysis(rows, moderator, model=model, method=method)
        except evidence.EvidenceError as exc:
            st.info(explorer.plain(str(exc)))
        else:
            shown = st.columns(4)
            shown[0].metric("Effects · sites · sources", f"{fit.k_effects} · {fit.n_sites} · {fit.n_sources}")
            if fit.kind == "numeric":
                shown[1].metric(f"Slope (% per {fit.unit or 'unit'})", f"{fit.percent_per_unit:+.1f} %")
            shown[2].metric("QM p", f"{fit.qm_pvalue:.3g}")
            shown[3].metric("R²", f"{fit.r2:.0f} %")
            st.caption(explorer.plain(f"{fit.k_missing} effects without a {moderator} value left "
                                      f"out. " + "; ".join(fit.notes)))
            if fit.kind == "numeric":
                st.altair_chart(charts.bubble_plot(fit.points(), fit.line(), moderator, fit.unit),
                                width="stretch")
            show_table(fit.coefficients.reset_index(), key="moderator_terms")

st.subheader("One group in detail")
groups = explorer.group_labels(table, by)
group = st.selectbox("Group", ["all groups together", *groups], key="group")
effects = explorer.group_effects(rows, by, None if group == "all groups together" else group)
pooled = explorer.pool_effects(effects, method, model)
if pooled.result is None:
    st.info(f"No forest plot: {explorer.plain(pooled.problem)}.")
    st.stop()
result = pooled.result
st.markdown(f"**Pooled:** {explorer.plain(explorer.effect_line(result))}; "
            f"{explorer.plain(explorer.behind_line(result))}; I² = "
            f"{'—' if result.i2 != result.i2 else f'{result.i2:.0f} %'}, τ² = {result.tau2:.4f}.")
if pooled.n_assumed_variance:
    st.caption(f"{pooled.n_assumed_variance} of these variances rest on an assumption; hover a "
               "study row for its variance note (also on the Study page).")
forest = explorer.forest_frame(effects, 100 * result.weights if result.weights is not None else None)
st.altair_chart(charts.forest_plot(forest, explorer.summary_rows(result)), width="stretch")

left, right = st.columns(2)
with left:
    st.markdown("**Funnel plot**")
    try:
        egger = evidence.egger_test(effects["yi"], effects["vi"])
        filled = evidence.trim_and_fill(effects["yi"], effects["vi"])
    except evidence.EvidenceError as exc:
        st.info(f"No small-study tests: {explorer.plain(str(exc))}")
        points, funnel = explorer.funnel_frame(effects, result.estimate)
    else:
        points, funnel = explorer.funnel_frame(effects, result.estimate, filled.points)
        st.caption(f"{explorer.egger_line(egger)}. Trim-and-fill "
                   f"({filled.estimator}): {filled.k0} filled on the {filled.side}; adjusted lnRR "
                   f"{filled.estimate:+.3f} ({explorer.percent(filled.estimate):+.1f} %). Both treat "
                   "the effects as independent (REML); the certainty column's test uses site means "
                   "when effects are nested.")
    st.altair_chart(charts.funnel_plot(points, funnel, result.estimate), width="stretch")
with right:
    st.markdown("**Leave one site out**")
    loo = explorer.leave_one_site_out(effects, model, method)
    if loo.empty:
        st.info("One site only: nothing to leave out.")
    else:
        st.altair_chart(charts.leave_one_out(loo, result.estimate), width="stretch")

st.markdown("**Figure files**")
st.caption("The forest and funnel plots of this group as a meta-analyst draws them: Author Year — "
           "site rows, estimate [95 % CI] and weight columns, the model and its assumptions "
           "stated (docs/figures.md; the same as soc-kb plot).")
if st.toggle("Make the files: SVG and PDF (vector), PNG (300 dpi)", key="figure_files"):

    @st.cache_data(show_spinner="Drawing…", max_entries=32)
    def _figure_file(effects, kind, facet, model, method, title, fmt):
        from kb import figures

        if kind == "forest":
            fig = figures.forest_figure(effects, model=model, method=method, by=facet, title=title)
        else:
            fig = figures.funnel_figure(effects, model=model, method=method, title=title)
        return figures.figure_bytes(fig, fmt)

    whole = group == "all groups together"
    facet = by[0] if whole and len(by) == 1 and by[0] != "mechanism" else None  # a diamond each
    shown_columns = [c for c in ("id", "yi", "vi", "study_id", "source_key", "first_author", "year",
                                 "site", "variance_note", "measure", "response", facet)
                     if c and c in effects]
    title = show_response(response) + ("" if whole else f" — {group}")
    stem = "-".join("".join(ch if ch.isalnum() else "-" for ch in part).strip("-")
                    for part in (response, "all" if whole else group, model))
    mimes = {"svg": "image/svg+xml", "pdf": "application/pdf", "png": "image/png"}
    for kind in ("forest", "funnel"):
        cells = st.columns(3)
        for cell, (fmt, mime) in zip(cells, mimes.items(), strict=True):
            try:
                data = _figure_file(effects[shown_columns], kind, facet, model, method, title, fmt)
            except KBError as exc:
                cell.info(f"No {kind} plot file: {explorer.plain(str(exc))}")
                break
            cell.download_button(f"{kind.capitalize()} plot .{fmt}", data, mime=mime,
                                 file_name=f"{kind}-{stem}.{fmt}", key=f"figure_{kind}_{fmt}")
