"""A growing turn's text keeps its committed start while the decodes of the turn change."""

from hypothesis import given, settings
from hypothesis import strategies as st

from models.cascade.asr import agreed_start, spliced

COMMITTED = "Uh, I'm cooking dinner for six people tonight."


def test_a_decode_that_hears_the_start_differently_continues_the_committed_words():
    decoded = "I'm cooking dinner for six people tonight, and one of them doesn't eat meat."
    assert spliced(COMMITTED, decoded) == COMMITTED + " and one of them doesn't eat meat."


def test_a_filler_the_new_decode_left_out_loses_no_word_after_it():
    committed = "I have chicken, a lot of vegetables, rice, um."
    decoded = "I have chicken, a lot of vegetables, rice and some chickpeas in the cupboard."
    assert spliced(committed, decoded) == committed + " and some chickpeas in the cupboard."


def test_a_decode_with_nothing_new_gives_the_committed_text():
    assert spliced(COMMITTED, "I'm cooking dinner for six people tonight") == COMMITTED


def test_a_decode_that_does_not_reach_the_committed_end_is_not_spliced():
    assert spliced(COMMITTED, "I'm cooking dinner for six.") is None  # its last words differ
    assert spliced(COMMITTED, "Set a timer for ten minutes.") is None  # another turn
    assert spliced("", "Set a timer.") == "Set a timer."


words = st.lists(st.sampled_from("the a cat sat on mat and then ran far away home today".split()), max_size=12)


@settings(max_examples=200, deadline=None)
@given(words.filter(bool), words)
def test_a_decode_that_repeats_the_committed_words_adds_exactly_what_follows(said, more):
    committed = " ".join(said)
    assert spliced(committed, " ".join(said + more)) == " ".join(said + more)


def test_two_decodes_agree_on_the_words_they_share_from_the_start_however_punctuated():
    earlier = "What would you suggest? for the first two days? and is it worth to"
    later = "What would you suggest for the first two days? And is it worth taking a day trip to Sintra?"
    assert agreed_start(earlier, later) == "What would you suggest for the first two days? And is it worth"
    assert agreed_start("Uh, I'm cooking", "I'm cooking dinner") == ""


def test_a_common_last_word_matched_further_on_does_not_swallow_the_words_between():
    committed = "Then the man at the counter said it might take"
    decoded = "Then the man had the count of days it might take three working days to show up in my account"
    assert spliced(committed, decoded) == committed + " three working days to show up in my account"
    committed = "Then the man at the counter said to"
    decoded = "Then the man had to account that it might take three working days to show up"
    assert spliced(committed, decoded) is None  # its "to" is one of the decode's later ones
