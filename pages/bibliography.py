"""Bibliography: the formatted references, searchable, and as BibTeX."""

import streamlit as st

from kb import KBError, explorer
from pages._common import fetch

st.title("Bibliography")

text = st.text_input("Search authors, titles, journals", key="bib_text")
try:
    sources = fetch("sources", text=text or None)
except KBError as exc:
    st.error(explorer.plain(str(exc)))
    st.stop()

st.caption(f"{len(sources)} reference(s). Formatted in the pybtex plain style.")
st.download_button("Download BibTeX", explorer.bibtex(sources), file_name="soc-kb.bib",
                   mime="application/x-bibtex", key="bibtex", disabled=sources.empty)

SHOWN = 300
for key in sources["key"].head(SHOWN):
    st.markdown(f"**{explorer.plain(key)}** " + explorer.plain(fetch("citation", key=key, backend="text")))
if len(sources) > SHOWN:
    st.caption(f"Showing the first {SHOWN} of {len(sources)}; search to narrow them down.")
