"""Bibliography: the formatted references with their DOI links, searchable, and as BibTeX,
RIS or CSL-JSON."""

import streamlit as st

from kb import KBError, explorer
from pages._common import fetch

st.title("Bibliography")

text = st.text_input("Search authors, titles, journals, years, DOIs", key="bib_text",
                     help="Every word must appear in one of them, in any case: 'Nature 2016'.")
try:
    sources = fetch("find_sources", text=text or None)
except KBError as exc:
    st.error(explorer.plain(str(exc)))
    st.stop()

st.caption(f"{len(sources)} reference(s), formatted in the pybtex plain style. The downloads hold "
           "what the search shows.")
down = st.columns(3)
for col, (name, make, ext, mime) in zip(down, [
        ("BibTeX", explorer.bibtex, "bib", "application/x-bibtex"),
        ("RIS", explorer.ris, "ris", "application/x-research-info-systems"),
        ("CSL-JSON", explorer.csl_json, "json", "application/vnd.citationstyles.csl+json")], strict=True):
    col.download_button(f"Download {name}", make(sources) if not sources.empty else "",
                        file_name=f"soc-kb.{ext}", mime=mime, key=f"bib_{ext}", disabled=sources.empty)

SHOWN = 300
for row in sources.head(SHOWN).itertuples(index=False):
    citation = fetch("citation", key=row.key, backend="text")
    st.markdown(f"**{explorer.plain(row.key)}** " + explorer.reference_markdown(citation, row.doi))
if len(sources) > SHOWN:
    st.caption(f"Showing the first {SHOWN} of {len(sources)}; search to narrow them down.")
