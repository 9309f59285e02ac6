"""bench natural: the companion answering natural speech, in real time, through the simulated
room, on the real models.

Each turn of the natural set (several voices with pauses, fillers and hesitations inside turns,
background speech under some, and two real people's telephone turns) is said into the room as
one turn, and `talk` answers it as the app would. Per turn and summarised: response (end of speech
to first sound), recognition left after the end of the turn, word error of what the session heard
against what was said and against the plain decode of the same audio (faster-whisper, 30 s
window, beam 1), false cut-ins (the session took the turn at a pause inside it, whether or not
the speaker's going on then took it back), and how the replies prepared at pauses were used.
The same figures, apart, for real people reading short sentences and commands (wideband
recordings from packages' source archives, bench/recordings.py).
"""

from __future__ import annotations

import time

import numpy as np

from bench.hearing import plain_decode
from bench.stats import peak_rss_mb, summary, word_error
from core.audio.format import RATE

# A turn ended this close to the end-of-turn silence was ended by it: the voice detector hears a
# pause's start up to a few 32 ms windows late.
SILENCE_RULE_SLACK_MS = 100


def cut_ins_of(turn, taken_at: list[float], end_of_turn_ms: float) -> list[dict]:
    """The turns the session took before the speaker had finished (every take but the last: the
    speaker went on after it): where in the turn (seconds), in which pause (its length) and after
    how much of it, and what ended it: the end-of-turn model, or the silence rule once
    end_of_turn_ms had passed. A take just after a pause (the speaker had gone on, but the voice
    detector had not heard it yet) belongs to that pause. After the first take the speaker waits
    for the reply (core/file_conversation.py), so later takes in the same turn may follow a wait
    the speaker did not mean."""
    found: list[dict] = []
    for at_s in taken_at[:-1]:
        at = int(at_s * RATE)
        started = [(a, b) for a, b in turn.pauses if a <= at]
        if started:
            a, b = started[-1]
            silence_ms, pause_s = 1000 * (at - a) / RATE, round((b - a) / RATE, 2)
        elif ends := [e for _, e in turn.speech if e <= at]:
            silence_ms, pause_s = 1000 * (at - max(ends)) / RATE, None
        else:  # inside speech whose pauses are not marked (a recording read as one piece)
            silence_ms = pause_s = None
        by = None
        if silence_ms is not None:
            by = "silence" if silence_ms >= end_of_turn_ms - SILENCE_RULE_SLACK_MS else "judge"
        found.append(
            {
                "at_s": round(at_s, 2),
                "silence_ms": None if silence_ms is None else round(silence_ms),
                "pause_s": pause_s,
                "by": by,
                "after_an_earlier_take": bool(found),
            }
        )
    return found


def _by_source(rows: list[dict], end_of_turn_ms: float) -> dict:
    """Response and early releases per kind of voice: piper, espeak (synthetic) and recorded."""
    out = {}
    for source in sorted({r["speaker"].split(":")[0] for r in rows}):
        mine = [r for r in rows if r["speaker"].startswith(source + ":")]
        ends = [r["end_of_turn_ms"] for r in mine if r["end_of_turn_ms"] is not None]
        out[source] = {
            "turns": len(mine),
            "response_ms": summary([r["response_ms"] for r in mine if r["response_ms"] is not None]),
            "ended_before_the_silence_rule": sum(e < end_of_turn_ms - SILENCE_RULE_SLACK_MS for e in ends),
            "pauses": sum(r["pauses"] for r in mine),
            "cut_ins": sum(len(r["cut_ins"]) for r in mine),
        }
    return out


def measure(engine, vad, turns, room=None) -> dict:
    from core.audio.room import RoomConfig
    from core.file_conversation import talk
    from core.turns import TurnConfig

    end_of_turn_ms = TurnConfig().end_of_turn_ms

    rows = []
    for turn in turns:
        audio = np.concatenate([turn.audio, np.zeros(RATE // 2, np.float32)])
        plain = plain_decode(engine.asr, turn.audio)
        conversation = talk(engine, vad, audio, room=room or RoomConfig())
        taken = conversation.turns
        last = taken[-1] if taken else None
        heard = " ".join(t.transcript for t in taken)
        lat = last.latency if last is not None else None
        rows.append(
            {
                "speaker": turn.speaker,
                "seconds": round(turn.seconds, 1),
                "pauses": len(turn.pauses),
                "taken_as": conversation.taken,
                "reasons": [str(t.reason) for t in taken],
                "reference": turn.text,
                "heard": heard,
                "plain": plain,
                "response_ms": round(lat.response, 1) if lat else None,
                "end_of_turn_ms": round(lat.end_of_turn, 1) if lat else None,
                "asr_after_end_ms": round(lat.stages.get("asr_after_end", float("nan")), 1) if lat else None,
                "stages_ms": {k: round(v, 1) for k, v in lat.stages.items()} if lat else None,
                "prepared": conversation.prepared,
                # Turns taken before the speaker had finished: the reply was heard (it sounded before
                # the speaker went on) or taken back before it made a sound.
                "cut_in_heard": sum(len(t.reply_audio) > 0 for t in taken[:-1]),
                "cut_ins": cut_ins_of(turn, conversation.taken_at, end_of_turn_ms),
                "prompt_tokens": lat.prompt_tokens if lat else None,
            }
        )
    refs = [r["reference"] for r in rows]
    responses = [r["response_ms"] for r in rows if r["response_ms"] is not None]
    after_end = [r["asr_after_end_ms"] for r in rows if r["asr_after_end_ms"] is not None]
    pauses = sum(r["pauses"] for r in rows)
    cut_ins = sum(len(r["cut_ins"]) for r in rows)
    heard_cut_ins = sum(r["cut_in_heard"] for r in rows)
    new_tokens = [r["prompt_tokens"]["new"] for r in rows if r["prompt_tokens"]]
    prepared = {k: sum(r["prepared"].get(k, 0) for r in rows) for k in ("prepared", "used", "thrown_away")}
    return {
        "turns": len(rows),
        "response_ms": summary(responses),
        "end_of_turn_ms": summary([r["end_of_turn_ms"] for r in rows if r["end_of_turn_ms"] is not None]),
        "asr_after_end_ms": summary(after_end),
        "word_error": {
            "heard": round(100 * word_error(refs, [r["heard"] for r in rows]), 2),
            "plain_decode": round(100 * word_error(refs, [r["plain"] for r in rows]), 2),
        },
        "false_cut_ins": {
            "count": cut_ins,
            "mid_turn_pauses": pauses,
            "share": round(cut_ins / pauses, 3) if pauses else None,  # None: the turns' pauses are not marked
            "heard": heard_cut_ins,
            "heard_share": round(heard_cut_ins / pauses, 3) if pauses else None,
            "by_judge": sum(c["by"] == "judge" for r in rows for c in r["cut_ins"]),
            "by_silence": sum(c["by"] == "silence" for r in rows for c in r["cut_ins"]),
        },
        "by_source": _by_source(rows, end_of_turn_ms),
        "prompt_new_tokens": summary(new_tokens),
        "prepared_replies": prepared,
        "unanswered": sum(1 for r in rows if "complete" not in r["reasons"]),
        "per_turn": rows,
    }


def run(seed: int = 0, asr: str | None = None) -> dict:
    from bench.natural import natural_set
    from bench.recordings import read_turns
    from core.engines import DEFAULT_ASR, load_cascade
    from core.audio.vad import load_vad

    turns = natural_set(seed)
    read = read_turns()
    t0 = time.perf_counter()
    engine, vad = load_cascade(asr=asr), load_vad()
    load_s = time.perf_counter() - t0
    result = {
        "bench": "natural",
        "set": f"natural_set(seed={seed}): synthetic voices (Piper, espeak-ng) "
        "with pauses and fillers, background speech, and a recorded call",
        "asr": asr or DEFAULT_ASR,
        "load_seconds": round(load_s, 1),
    }
    result.update(measure(engine, vad, turns))
    # Real people reading (bench/recordings.py): kept apart, so the figures above stay comparable
    # from one run to the next.
    result["read_by_real_people"] = {
        "set": "recordings from PyPI source archives: LibriVox, CMU Sphinx, CMU ARCTIC, praatio, JFK",
        **measure(engine, vad, read),
    }
    result["peak_rss_mb"] = peak_rss_mb()
    return result
