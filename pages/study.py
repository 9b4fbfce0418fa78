"""Study: one study in full, with its effects (and their provenance) and the claims it bears on."""

import streamlit as st

from kb import KBError, explorer
from pages._common import compute, fetch

st.title("Study")

SHOWN = 1000
wanted = st.query_params.get("id")
find = st.text_input("Find a study (part of its id)", key="study_find")
# the study in the URL heads the list, unless the user is looking for another one
ids = fetch("study_ids", contains=find, first=None if find else wanted, limit=SHOWN)
if not ids:
    st.info(f"No study id contains '{explorer.plain(find)}'." if find else
            "The knowledge base has no studies yet; add one on the Add study page.")
    st.stop()
study_id = st.selectbox("Study", ids, index=ids.index(wanted) if wanted in ids else 0, key="study_id",
                        help=f"The first {SHOWN:,} matching ids; type in the box above to narrow them.")
st.query_params["id"] = study_id

try:
    study = fetch("study", study_id=study_id)
except KBError as exc:
    st.error(explorer.plain(str(exc)))
    st.stop()

if study.get("source_key"):
    st.markdown(explorer.plain(fetch("citation", key=study["source_key"], backend="text")))
    source = fetch("get", table="sources", key=study["source_key"])
    if explorer.doi_url(source.get("doi")):
        st.link_button(explorer.plain(f"doi:{source['doi']}"), explorer.doi_url(source["doi"]))
else:
    st.caption("No source recorded for this study.")

what = {"Study type": study.get("study_type"), "Biome": study.get("biome"),
        "Ecosystem": study.get("ecosystem"), "Site": study.get("site"), "Country": study.get("country"),
        "Depth (cm)": explorer.depth_text(study.get("depth_top_cm"), study.get("depth_bottom_cm")) or None,
        "Depth class": study.get("depth_class"), "Warming method": study.get("warming_method"),
        "Warming (°C)": study.get("warming_c"), "Warmed medium": study.get("warming_medium"),
        "Duration (years)": study.get("duration_years"), "SOC direction": study.get("soc_direction"),
        "Respiration direction": study.get("respiration_direction"),
        "Mechanisms": ", ".join(study.get("mechanisms") or []) or None,
        "Origin": study.get("origin"), "Curator": study.get("curator"), "Added": study.get("added_at")}
st.subheader("What was studied")
st.dataframe({"field": [k for k, v in what.items() if v is not None],
              "value": [str(v) for v in what.values() if v is not None]},
             hide_index=True, width="stretch")
if study.get("summary"):
    st.markdown("**Summary.** " + explorer.plain(study["summary"]))
if study.get("evidence_quote"):
    st.markdown("> " + explorer.plain(study["evidence_quote"]))
    if study.get("quote_location"):
        st.caption("Quoted from: " + explorer.plain(study["quote_location"]))

st.subheader("Effects")
effects = fetch("effects", study_id=study_id)
if effects.empty:
    st.info("No quantitative effect recorded for this study (it may still count by its direction).")
else:
    st.dataframe(explorer.effects_table(effects), hide_index=True, width="stretch",
                 column_config={"yi": st.column_config.NumberColumn("yi (lnRR/SMD/MD)", format="%.4f"),
                                "percent": st.column_config.NumberColumn("% change", format="%+.1f %%"),
                                "vi": st.column_config.NumberColumn("vi", format="%.3g"),
                                "variance_note": "variance note", "source_location": "from"})
    st.caption("Percent change is 100·(exp(lnRR) − 1). Where a variance rests on an assumption, "
               "the variance note says which.")

st.subheader("Claims it bears on")
claims = compute(explorer.db_path(), "kb.explorer.study_claims", study_id=study_id)
if claims.empty:
    st.info("This study is not linked to any claim.")
else:
    st.dataframe(claims, hide_index=True, width="stretch")
