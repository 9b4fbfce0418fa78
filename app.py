"""soc-kb explorer: ``streamlit run app.py`` (database: $SOC_KB_DB, else ./soc-kb.db)."""

import streamlit as st

st.set_page_config(page_title="soc-kb · SOC × warming evidence", page_icon=":material/eco:", layout="wide")

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
