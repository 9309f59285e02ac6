"""Where a new prompt can reuse the chat model's cache: the stretch of a dropped history page."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.cascade.chat import MIN_MOVED_TOKENS, moved_stretch


def tokens(rng, n):
    return rng.integers(0, 150_000, n).tolist()


def test_a_stretch_cut_after_the_shared_start_is_found():
    rng = np.random.default_rng(1)
    system, dropped, kept, old_tail, new_tail = (tokens(rng, n) for n in (80, 200, 400, 30, 50))
    cached = system + dropped + kept + old_tail
    prompt = system + kept + new_tail
    assert moved_stretch(cached, prompt) == (80, 280, 400)


def test_nothing_to_move_when_the_prompt_only_grows_or_shares_too_little():
    rng = np.random.default_rng(2)
    cached = tokens(rng, 300)
    assert moved_stretch(cached, cached + tokens(rng, 40)) is None  # the plain prefix does it all
    kept = cached[200 : 200 + MIN_MOVED_TOKENS - 1]
    assert moved_stretch(cached, cached[:50] + kept + tokens(rng, 40)) is None  # too short to move
    assert moved_stretch(cached, cached[:50] + tokens(rng, 200)) is None  # nothing of it is kept


def test_of_several_places_the_longest_run_is_moved():
    rng = np.random.default_rng(3)
    system, phrase, x, c, y, b = (tokens(rng, n) for n in (20, MIN_MOVED_TOKENS, 15, 10, 25, 60))
    cached = system + x + phrase + c + y + phrase + b  # the phrase twice: only the second goes on as the prompt does
    prompt = system + phrase + b
    second = len(system + x + phrase + c + y)
    assert moved_stretch(cached, prompt) == (20, second, MIN_MOVED_TOKENS + 60)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 100), st.integers(1, 300), st.integers(MIN_MOVED_TOKENS, 400), st.integers(0, 10_000))
def test_what_is_moved_always_matches_the_prompt(shared_n, gap_n, kept_n, seed):
    rng = np.random.default_rng(seed)
    cached = tokens(rng, shared_n + gap_n + kept_n)
    prompt = cached[:shared_n] + cached[shared_n + gap_n :] + tokens(rng, 20)
    found = moved_stretch(cached, prompt)
    assert found is not None
    shared, gap_end, run = found
    assert cached[:shared] == prompt[:shared]
    assert cached[gap_end : gap_end + run] == prompt[shared : shared + run]
    assert run >= kept_n
