"""Study: one study in full, with its effects (and their provenance) and the claims it bears on.
Found by its id or by its source's authors, title, journal or DOI, or its site."""

import streamlit as st

from kb import KBError, explorer
from pages._common import all_labels, compute, fetch, table

st.title("Study")

SHOWN = 1000
wanted = st.query_params.get("id")
find = st.text_input("Find a study (id, author, title, journal, DOI, site or country)", key="study_find",
                     help="Every word must appear in one of them, in any case: 'Melillo Harvard'.")
try:
    # the study in the URL heads the list, unless the user is looking for another one
    found = fetch("find_studies", text=find or None, first=None if find else wanted, limit=SHOWN)
except KBError as exc:
    st.error(explorer.plain(str(exc)))
    st.stop()
if found.empty:
    st.info(f"No study matches '{explorer.plain(find)}'." if find else
            "The knowledge base has no studies yet; add one on the Add study page.")
    st.stop()
choices = explorer.study_choices(found)
ids = list(choices)
st.caption(f"{len(ids):,} stud{'y' if len(ids) == 1 else 'ies'} found" if find else
           f"{len(ids):,} studies" + (f" (the first {SHOWN:,})" if len(ids) == SHOWN else ""))
study_id = st.selectbox("Study", ids, index=ids.index(wanted) if wanted in ids else 0, key="study_id",
                        format_func=choices.get,
                        help=f"The first {SHOWN:,} matching studies; type in the box above to narrow them.")
st.query_params["id"] = study_id

try:
    study = fetch("study", study_id=study_id)
except KBError as exc:
    st.error(explorer.plain(str(exc)))
    st.stop()

if study.get("source_key"):
    source = fetch("get", table="sources", key=study["source_key"])
    citation = fetch("citation", key=study["source_key"], backend="text")
    st.markdown(explorer.reference_markdown(citation, source.get("doi")))
else:
    st.caption("No source recorded for this study.")

st.subheader("What was studied")
table(explorer.study_facts(study, all_labels()), key="study_facts")
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
    table(explorer.effects_table(effects), key="study_effects",
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
    table(claims, key="study_claims")
