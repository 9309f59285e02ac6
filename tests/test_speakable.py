"""The clause splitter and text cleaning that sit between the chat model and the voice."""

from models.cascade.speakable import ClauseSplitter, speakable


def stream(text: str, splitter: ClauseSplitter | None = None, step: int = 1) -> list[str]:
    splitter = splitter or ClauseSplitter()
    out = []
    for i in range(0, len(text), step):
        out += splitter.push(text[i : i + step])
    return out + splitter.flush()


def test_first_clause_is_released_before_the_sentence_ends():
    splitter = ClauseSplitter(first_min_words=3)
    released = []
    for piece in ["Well, ", "that is ", "a good ", "question, ", "and the ", "answer is ", "long"]:
        released += splitter.push(piece)
        if released:
            break
    assert released == ["Well, that is a good question,"]
    assert piece == "question, "  # released the moment the comma was followed by a space


def test_sentences_split_and_nothing_is_lost():
    text = "Sure. The sky looks blue because air scatters blue light most, more than red light. Anything else?"
    clauses = stream(text)
    assert clauses[0] == "Sure."
    assert " ".join(clauses) == text


def test_markdown_lists_code_and_emoji_are_not_spoken():
    text = (
        "Here are **two** tips:\n\n1. Drink *water* 💧\n- Sleep well 😴\n"
        "```python\nprint('hi')\n```\nSee [the guide](https://example.com/x) for `more`."
    )
    spoken = " ".join(stream(text, step=3))
    for banned in ("*", "`", "💧", "😴", "print", "https", "1.", "- ", "(", "#"):
        assert banned not in spoken, banned
    assert "Drink water" in spoken and "Sleep well" in spoken and "See the guide for" in spoken


def test_code_fence_split_across_pieces_is_dropped():
    clauses = stream("Look: `", step=1) + stream("Before.\n``", ClauseSplitter())
    assert all("`" not in c for c in clauses)
    spoken = " ".join(stream("Before it.\n``" + "`js\nlet x = 1;\n``" + "`\nAfter it."))
    assert "let x" not in spoken and "Before it." in spoken and "After it." in spoken


def test_long_unpunctuated_text_is_cut():
    words = " ".join(["word"] * 60) + " "
    clauses = ClauseSplitter(max_words=25).push(words)
    assert clauses and all(len(c.split()) <= 26 for c in clauses)


def test_speakable_keeps_plain_text_and_drops_empty():
    assert speakable("It is 5 o'clock, isn't it?") == "It is 5 o'clock, isn't it?"
    assert speakable("*** 🎉 ---") == ""
    assert speakable("snake_case stays, _emphasis_ goes") == "snake_case stays, emphasis goes"


def test_a_clause_cut_early_ends_before_a_phrase_word_or_after_the_last_whole_word():
    splitter = ClauseSplitter()
    assert splitter.push("Sure, the moon is far. ") == ["Sure, the moon is far."]
    assert splitter.push("It is about three hundred thousand kilometres awa") == []
    assert splitter.cut(3) == ["It is about three hundred thousand kilometres"]  # "is" leaves 1 word
    assert splitter.pending_text == "awa"
    splitter.push("y from us and light takes a second to cro")
    assert splitter.cut(3) == ["away from us and light takes a second"]  # before the last phrase word
    assert splitter.push("ss it. ") == ["to cross it."]


def test_a_clause_is_not_cut_early_below_the_fewest_words():
    splitter = ClauseSplitter()
    splitter.push("Well then the")
    assert splitter.cut(3) == []
    assert splitter.pending_text == "Well then the"


def test_a_first_clause_cut_before_a_phrase_word_holds_the_characters_asked_for():
    # Without a minimum the first clause is cut before "approximately", three words in.
    moon = "The moon is approximately 384,400 kilometres away from Earth."
    assert stream(moon)[0] == "The moon is"
    # Asked to last longer, it runs on to the next phrase word that leaves enough behind it.
    longer = stream(moon, ClauseSplitter(first_phrase_chars=30))
    assert longer == ["The moon is approximately 384,400 kilometres away", "from Earth."]
    # Punctuation still closes a clause at once: the minimum is only for cuts that are ours to place.
    far = "Sure, the moon is far away."
    assert stream(far, ClauseSplitter(first_phrase_chars=40))[0] == far
    assert stream("Well, that is it.", ClauseSplitter(first_min_words=1, first_phrase_chars=40))[0] == "Well,"
