"""vote_count() against R's binom.test, plus the direction vocabulary and bad input."""

import re

import numpy as np
import pytest
from metafor_bias_golden import GOLD, assert_close

from evidence import EvidenceError, VoteCountResult, vote_count


@pytest.mark.parametrize("case", GOLD["binom_test"], ids=lambda c: c["call"])
def test_sign_test_matches_binom_test(case):
    n_inc, n = case["n_increase"], case["n_tested"]
    votes = ["increase"] * n_inc + ["decrease"] * (n - n_inc) + ["no_change", "mixed"]
    res = vote_count(votes, alpha=1 - case["conf_level"])
    for ours, theirs in (("pvalue", "pvalue"), ("proportion_increase", "proportion"),
                         ("ci_low", "ci_low"), ("ci_high", "ci_high")):
        assert_close(getattr(res, ours), case[theirs], f"{ours} ({case['call']})")


def test_every_category_is_counted_and_only_signs_are_tested():
    votes = ["increase", "Decrease ", "no_change", "mixed", "not_reported", "increase", 0.4, -1, 0]
    res = vote_count(votes)
    assert isinstance(res, VoteCountResult)
    assert (res.n_increase, res.n_decrease, res.n_no_change, res.n_mixed, res.n_not_reported) == (3, 2, 2, 1, 1)
    assert (res.n_total, res.n_tested) == (9, 5)
    # exact on purpose: the p-value is a function of the two counts alone, so the same
    # counts must give the very same number (any difference means other votes leaked in)
    assert res.pvalue == vote_count(["increase"] * 3 + ["decrease"] * 2).pvalue
    assert res.to_frame().loc[0, "n_total"] == 9


def test_signed_numbers_equal_their_directions():
    effects = np.array([0.2, -0.1, 0.3, 0.05, -0.4, 0.0])
    words = ["increase", "decrease", "increase", "increase", "decrease", "no_change"]
    assert vote_count(effects) == vote_count(words)  # same counts: identical floats, as above


VOTE_ERRORS = [
    ("unknown word", ["increase", "up"], {},
     "directions[1] is 'up'; must be one of ['increase', 'decrease', 'no_change', 'mixed', 'not_reported']"),
    ("NaN number", [0.1, float("nan")], {}, "directions[1] is NaN; use 'not_reported'"),
    ("None", ["increase", None], {}, "directions[1] is None of type NoneType"),
    ("bool", [True], {}, "directions[0] is True of type bool"),
    ("no signed votes", ["no_change", "mixed"], {}, "vote_count needs at least one 'increase' or 'decrease'"),
    ("empty", [], {}, "got no votes"),
    ("a single string", "increase", {}, "directions must be a sequence of votes, not a single string"),
    ("bad alpha", ["increase"], {"alpha": 5}, "alpha must be a number between 0 and 1"),
]


@pytest.mark.parametrize("case,votes,kwargs,message", VOTE_ERRORS, ids=[c[0] for c in VOTE_ERRORS])
def test_vote_count_refuses_bad_input(case, votes, kwargs, message):
    with pytest.raises(EvidenceError, match=re.escape(message)):
        vote_count(votes, **kwargs)
