"""Claims: every claim with the balance of its evidence and its certainty; one claim in full."""

import streamlit as st

from kb import explorer
from pages._common import compute

st.title("Claims")

path = explorer.db_path()
claims = compute(path, "kb.explorer.claims_overview")
if claims.empty:
    st.info("The knowledge base has no claims yet (add them with `soc-kb add`).")
    st.stop()
only_contested = st.toggle("Only contested claims", key="only_contested")
shown = claims[claims["contested"]] if only_contested else claims
st.caption(f"{len(claims)} claims, {int(claims['contested'].sum())} contested (⚠). Balance counts "
           "distinct studies; a study supporting a contradicting claim counts against.")
st.dataframe(shown.assign(contested=shown["contested"].map({True: "⚠ contested", False: ""})),
             hide_index=True, width="stretch", key="claims_table",
             column_config={"n_supports": "for", "n_contradicts": "against", "n_qualifies": "qualifying",
                            "text": st.column_config.TextColumn("claim", width="large")})

st.subheader("One claim")
claim_id = st.selectbox("Claim", claims["id"].tolist(), key="claim_id")
view = compute(path, "kb.explorer.claim_view", claim_id=claim_id)
st.markdown("> " + explorer.plain(view.text))
b = view.balance
cols = st.columns(4)
cols[0].metric("For", b["n_supports"])
cols[1].metric("Against", b["n_contradicts"])
cols[2].metric("Qualifying", b["n_qualifies"])
cols[3].metric("Certainty", view.grade)
for reason in view.contested:
    st.warning("Contested: " + explorer.plain(reason))
st.markdown("**Why this certainty**")
st.dataframe(view.reasons, hide_index=True, width="stretch")
st.markdown("**Evidence graph**")
st.graphviz_chart(view.dot, width="stretch")
st.markdown("**Evidence**")
st.dataframe(view.evidence, hide_index=True, width="stretch")
