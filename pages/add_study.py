"""Add study: a form checked exactly as ``soc-kb add`` checks a file; or upload a record or .bib file."""

import streamlit as st

from kb import KBError, RecordError, explorer
from kb.claims.graph import add_and_report
from kb.vocab import WARMING_MEDIA
from pages._common import compute, fetch, options, table, writing

st.title("Add study")
st.caption("Fill in what the paper states and leave the rest empty (never guess). The record is "
           "checked as `soc-kb add` checks a file: one bad field refuses it and nothing is written.")

slots = {}


def field(name, widget, *args, **kwargs):
    """A form widget keyed ``add_<name>`` with an error slot right under it."""
    value = widget(*args, key=f"add_{name}", **kwargs)
    slots[name] = st.empty()
    return value


def choice(name, label, vocabulary, **kwargs):
    names, show = options(vocabulary)
    return field(name, st.selectbox, label, names, index=None, format_func=show, **kwargs)


sources = fetch("sources")["key"].tolist()
claims = fetch("claims")
with st.form("add_study"):
    left, right = st.columns(2)
    with left:
        values = {"id": field("id", st.text_input, "Study id (unique, no spaces)"),
                  "source_key": field("source_key", st.selectbox, "Source (citekey)", sources, index=None,
                                      help="Import the paper's BibTeX below first if it is not listed."),
                  "study_type": choice("study_type", "Study type", "study_types"),
                  "biome": choice("biome", "Biome", "biomes"),
                  "ecosystem": choice("ecosystem", "Ecosystem", "ecosystems"),
                  "site": field("site", st.text_input, "Site"),
                  "country": field("country", st.text_input, "Country"),
                  "lat": field("lat", st.number_input, "Latitude (°)", value=None, format="%.4f"),
                  "lon": field("lon", st.number_input, "Longitude (°)", value=None, format="%.4f"),
                  "depth_top_cm": field("depth_top_cm", st.number_input, "Depth top (cm)", value=None),
                  "depth_bottom_cm": field("depth_bottom_cm", st.number_input, "Depth bottom (cm)",
                                           value=None)}
    with right:
        values |= {"warming_method": choice("warming_method", "Warming method", "warming_methods"),
                   "warming_c": field("warming_c", st.number_input, "Warming (°C)", value=None),
                   "warming_medium": field("warming_medium", st.selectbox, "Warmed medium",
                                           list(WARMING_MEDIA), index=None,
                                           format_func=lambda m: explorer.label(m, None)),
                   "duration_years": field("duration_years", st.number_input, "Duration (years)",
                                           value=None),
                   "soc_direction": choice("soc_direction", "SOC direction (required)", "directions"),
                   "respiration_direction": choice("respiration_direction", "Respiration direction",
                                                   "directions"),
                   "mechanisms": field("mechanisms", st.multiselect, "Mechanisms",
                                       options("mechanisms")[0], format_func=options("mechanisms")[1]),
                   "summary": field("summary", st.text_area, "Summary", height=80),
                   "evidence_quote": field("evidence_quote", st.text_area, "Evidence quote (verbatim)",
                                           height=80),
                   "quote_location": field("quote_location", st.text_input, "Quote location"),
                   "curator": field("curator", st.text_input, "Curator")}
    st.markdown("**Bears on a claim** (optional)")
    link_cols = st.columns([3, 1, 3])
    with link_cols[0]:
        claim_id = field("link_claim_id", st.selectbox, "Claim", claims["id"].tolist(), index=None)
    with link_cols[1]:
        relation = field("link_relation", st.selectbox, "Relation",
                         ["supports", "contradicts", "qualifies"], index=None)
    with link_cols[2]:
        link_quote = field("link_quote", st.text_input, "Quote that links them")
    submitted = st.form_submit_button("Save", type="primary")
    slots["form"] = st.empty()

if submitted:
    record = explorer.study_record(values)
    records = {"studies": [record]}
    if claim_id or relation or link_quote:
        records["claim_links"] = [explorer.study_record({"claim_id": claim_id, "study_id": record.get("id"),
                                                         "relation": relation, "quote": link_quote})]
    try:
        with writing() as kb:
            _, impact = add_and_report(kb, records)
    except RecordError as exc:
        name = f"link_{exc.field}" if exc.table == "claim_links" else exc.field
        slots.get(name, slots["form"]).error(explorer.plain(str(exc)))
    except KBError as exc:
        slots["form"].error(explorer.plain(str(exc)))
    else:
        st.success(explorer.plain(f"Saved {record['id']}"))
        moved = impact.to_frame()
        if moved.empty:
            st.info("It is linked to no claim, so no claim's balance or certainty moved.")
        else:
            st.markdown(f"**It touches {len(moved)} claim(s)** (studies for/against, certainty, before → after):")
            table(moved.reindex(columns=explorer.IMPACT_COLUMNS), key="impact")
        scoped = compute(explorer.db_path(), "kb.explorer.scope_claims", study_id=record["id"])
        if not scoped.empty:
            st.markdown(f"**{len(scoped)} claim(s) are scoped to its biome or mechanisms** "
                        "(link it to them when it bears on them):")
            table(scoped, key="scoped_claims")

st.divider()
st.subheader("Upload a file")
st.caption("A record file (YAML, JSON or CSV, as `soc-kb template` prints) or a BibTeX file. "
           "All its records land together, or none do.")
upload = st.file_uploader("Record file or .bib", type=["yaml", "yml", "json", "csv", "bib"],
                          key="upload")
if upload is not None and st.button("Import file", key="import"):
    try:
        with writing() as kb:
            counts = explorer.import_upload(kb, upload.name, upload.getvalue())
    except KBError as exc:
        st.error(explorer.plain(str(exc)))
    else:
        added = ", ".join(f"{n} {table}" for table, n in counts.items() if n) or "nothing"
        st.success(explorer.plain(f"Imported {upload.name}: {added}"))
