"""Claims: every claim with the balance of its evidence and its certainty; one claim in full,
its evidence from the literature and its evidence from data side by side."""

import streamlit as st

from kb import explorer
from pages._common import compute, table

st.title("Claims")

path = explorer.db_path()
claims = compute(path, "kb.explorer.claims_overview")
if claims.empty:
    st.info("The knowledge base has no claims yet (add them with `soc-kb add`).")
    st.stop()
only_contested = st.toggle("Only contested claims", key="only_contested")
shown = claims[claims["contested"]] if only_contested else claims
st.caption(f"{len(claims)} claims, {int(claims['contested'].sum())} contested (⚠). Balance counts "
           "distinct studies; a study supporting a contradicting claim counts against. Data: the "
           "syntheses a claim cites, by what their data say now; certainty is the best body of "
           "evidence, one level lower when bodies disagree.")
table(shown.assign(contested=shown["contested"].map({True: "⚠ contested", False: ""})),
      key="claims_table",
      column_config={"n_supports": "for", "n_contradicts": "against", "n_qualifies": "qualifying",
                     "n_data_supports": "data for", "n_data_contradicts": "data against",
                     "n_data_inconclusive": "data inconclusive",
                     "n_data_qualifies": "data qualifying",
                     "text": st.column_config.TextColumn("claim", width="large")})

st.subheader("One claim")
claim_id = st.selectbox("Claim", claims["id"].tolist(), key="claim_id")
view = compute(path, "kb.explorer.claim_view", claim_id=claim_id)
st.markdown("> " + explorer.plain(view.text))
b, d = view.balance, view.data_balance or {}
cols = st.columns(5)
cols[0].metric("For", b["n_supports"])
cols[1].metric("Against", b["n_contradicts"])
cols[2].metric("Qualifying", b["n_qualifies"])
cols[3].metric("Data for / against", f"{d.get('n_data_supports', 0)} / {d.get('n_data_contradicts', 0)}")
cols[4].metric("Certainty", view.grade)
for reason in view.contested:
    st.warning("Contested: " + explorer.plain(reason))
st.markdown("**Why this certainty**")
table(view.reasons, key="claim_reasons")
st.markdown("**Evidence graph**")
st.graphviz_chart(view.dot, width="stretch")
literature, data = st.columns(2)
with literature:
    st.markdown(f"**Evidence from the literature** — certainty {explorer.plain(view.literature_grade)}")
    table(view.evidence, key="claim_evidence")
with data:
    st.markdown("**Evidence from data** — cited syntheses, run on the data now")
    if view.data is None or view.data.empty:
        st.caption("No synthesis of the data is cited for this claim.")
    else:
        table(view.data, key="claim_data",
              column_config={"data_relation": "the data say", "result": "result now",
                             "note": st.column_config.TextColumn("why linked", width="large")})
