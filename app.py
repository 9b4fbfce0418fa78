"""soc-kb explorer: ``streamlit run app.py`` (database: $SOC_KB_DB, else ./soc-kb.db)."""

import streamlit as st

from kb import KBError
from kb.explorer import db_path, open_base, plain

st.set_page_config(page_title="soc-kb · SOC × warming evidence", page_icon=":material/eco:", layout="wide")

try:  # a missing, foreign or newer database: say so once, instead of an error on every page
    open_base(db_path()).close()
except KBError as exc:
    st.error(plain(str(exc)))
    st.stop()

pages = [
    st.Page("pages/explore.py", title="Explore", icon=":material/search:", default=True),
    st.Page("pages/study.py", title="Study", icon=":material/description:"),
    st.Page("pages/add_study.py", title="Add study", icon=":material/add_circle:"),
    st.Page("pages/claims.py", title="Claims", icon=":material/balance:"),
    st.Page("pages/synthesis.py", title="Synthesis", icon=":material/functions:"),
    st.Page("pages/evidence_map.py", title="Evidence map", icon=":material/grid_on:"),
    st.Page("pages/bibliography.py", title="Bibliography", icon=":material/menu_book:"),
]
st.navigation(pages).run()
