"""When the user's turn starts and ends, from per-window speech probabilities.

Positions are counted in samples of the 16 kHz stream, so the same logic runs on a live
microphone or a file. Besides the start and the end of a turn, it reports a *pause*: a short
silence after which the reply can be prepared speculatively, and *resume* when speech comes back
before the turn ended, so that speculative work is thrown away.

While the companion speaks, a barge-in has two steps. A short run of sure speech *holds* the reply
(the speaker pauses, as a person does when someone starts to talk); enough speech then *starts*
the user's turn and the reply is dropped, while quiet first *releases* it and it goes on where it
paused. The hold is what makes a barge-in quick without making it jumpy: the companion falls
silent after 160 ms of unbroken speech, but only 300 ms costs it its reply.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.audio.vad import SileroVad


LEVEL_WINDOWS = 5  # windows (160 ms) averaged for the level that is compared with the user's


@dataclass(frozen=True)
class TurnConfig:
    threshold: float = 0.5  # speech probability that counts as voiced
    min_speech_ms: int = 160  # voiced time before a turn starts (coughs and clicks do not)
    speculate_after_ms: int = 96  # silence after which a reply is prepared ahead of time
    # Silence that ends the turn whatever it sounds like (the user's setting): the wait of a turn
    # the end-of-turn model hears as unfinished; people pause up to ~1.5 s inside a sentence.
    end_of_turn_ms: int = 1500
    complete_after_ms: int = 200  # silence that ends a turn the end-of-turn model judges complete
    complete_threshold: float = 0.5  # its probability that counts as complete
    pre_roll_ms: int = 300  # audio kept from before the detected start
    barge_in_ms: int = 300  # speech needed to interrupt a reply (breaths and "mhm"s are shorter)
    barge_in_threshold: float = 0.5  # speech probability counted toward a barge-in
    barge_in_hold_ms: int = 160  # unbroken speech that pauses a reply until the barge-in is decided
    barge_in_release_ms: int = 256  # quiet that lets a paused reply go on
    barge_in_hold_max_ms: int = 2000  # a pause no phrase took over ends here (talk in the room)
    start_window_ms: int = 600  # voiced time toward a start is counted over this much recent audio
    reopen_ms: int = 1000  # speech this soon after a turn ended continues that turn
    # Speech this far under the user's own level in their last turn is someone else in the room (a
    # television, people talking nearby) once the user has fallen silent: it does not go on with
    # the turn, start another within reopen_ms, or cut into the reply.
    background_db: float = 12.0
    # Speech that took the turn up again after a pause is judged once more as a whole when it
    # pauses: a run this far under the user's level on average was someone else (a background
    # voice's first loud syllables can come within background_db; its whole run does not), and
    # the turn's pause goes on from where the user fell silent.
    background_run_db: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError("threshold must be between 0 and 1")
        if not 0 < self.speculate_after_ms <= self.end_of_turn_ms:
            raise ValueError("speculate_after_ms must be positive and at most end_of_turn_ms")


class TurnEventKind(StrEnum):
    START = "start"  # the user's turn began
    PAUSE = "pause"  # a short silence: a reply may be prepared
    RESUME = "resume"  # speech again before the turn ended: the prepared reply is void
    END = "end"  # the turn is over
    HOLD = "hold"  # while the companion speaks: someone may be cutting in
    RELEASE = "release"  # ... it was nothing, go on


@dataclass(frozen=True)
class TurnEvent:
    kind: TurnEventKind
    at: int  # sample position the event refers to (turn start, or end of the last voiced window)


class TurnDetector:
    def __init__(self, config: TurnConfig, window: int = 512, rate: int = 16000) -> None:
        self.config = config
        self.window = window
        self._ms = window * 1000 / rate
        self._neg = max(0.05, config.threshold - 0.15)  # hysteresis: speech ends below this
        self._pos = 0  # samples of the stream pushed so far: the position every event reports
        self.reset()

    def reset(self, at: int | None = None) -> None:
        """Forget the turn and any hold. The position goes on counting (events keep naming places
        in the same stream), or moves to `at`: where the next window starts, when the VAD was
        reset too (it drops the samples it held) or frames went by without being pushed."""
        if at is not None:
            self._pos = at
        # Recent windows' voicing and start positions: "Wait... stop!" is two short words with a
        # pause between, and the echo canceller ducks the first ~100 ms of speech over a reply;
        # counting voiced time over a short span instead of one unbroken run catches them, while
        # a click, a breath or a "mm" stays under the bar.
        self._recent: collections.deque[tuple[bool, int]] = collections.deque(
            maxlen=max(1, round(self.config.start_window_ms / self._ms))
        )
        self._sure_run = 0  # unbroken windows of sure speech, for a barge-in
        self._holding = False  # a reply is paused until the barge-in is decided
        self._held_quiet = 0  # windows since the last sure one, while holding
        self._held_for = 0  # windows since the hold began
        self._hold_cooldown = 0  # windows before a new hold may begin, after one ran out
        self._silence = 0.0
        self._in_turn = False
        self._paused = False
        self.last_voiced_end = 0
        # The user's level: mean power of the current (or just ended) turn's voiced windows, and
        # the latest windows' power, averaged so that one loud syllable of a background voice is not
        # taken for the user's.
        self._turn_power = [0.0, 0]  # sum, windows
        self._powers: collections.deque[float] = collections.deque(maxlen=LEVEL_WINDOWS)
        self._after_end = 0  # windows left in which the ended turn's level still decides
        # Where the turn stood when speech took it up again after a pause (its last voiced end and
        # level): that speech, the turn's level since, is judged as a whole at its own pause.
        self._before_run: tuple[int, tuple[float, float]] | None = None
        # The current run of sure speech, its latest barge_in_ms: what a cut-in is judged on.
        self._run_powers: collections.deque[float] = collections.deque(
            maxlen=max(1, round(self.config.barge_in_ms / self._ms))
        )

    @property
    def position(self) -> int:
        return self._pos

    @property
    def in_turn(self) -> bool:
        return self._in_turn

    @property
    def silence_ms(self) -> float:
        """Silence since the last voiced window of the current turn (0 while voiced)."""
        return self._silence

    def end_turn(self) -> TurnEvent:
        """End the turn now (its pause was judged the end): as if the full silence had passed."""
        self._in_turn = self._paused = False
        self._silence = 0.0
        self._after_end = round(self.config.reopen_ms / self._ms)
        self._before_run = None
        return TurnEvent(TurnEventKind.END, self.last_voiced_end)

    def _far_under_the_user(self, power: float) -> bool:
        """Whether `power` is far under the user's own level (that of their last turn)."""
        return _far_under(power, self._turn_power, self.config.background_db)

    def _under_the_user(self) -> bool:
        """Whether the sound now (the latest windows' power) is far under the user's own level at
        a moment when it would go on with a turn they have stopped speaking in, or start one just
        after it ended: then it is someone else in the room."""
        deciding = (self._in_turn and self._silence > 0) or (not self._in_turn and self._after_end > 0)
        return deciding and self._far_under_the_user(sum(self._powers) / len(self._powers))

    def _run_under_the_user(self) -> bool:
        """Whether the run of sure speech that would hold or cut into the reply (its latest
        barge_in_ms) is far under the user's own level. The run's own windows, not the latest
        160 ms: at a cut-in's onset those still hold the quiet before it, and through the echo
        canceller a voice over the reply dips between syllables; a run of the user's own speech is
        near their level on average, a television's stays far under it."""
        runs = self._run_powers
        return bool(runs) and self._far_under_the_user(sum(runs) / len(runs))

    def begin_turn(self) -> None:
        """Enter a turn now, whatever the audio says (push-to-talk pressed)."""
        self._in_turn, self._paused, self._silence = True, False, 0.0

    def push(self, prob: float, min_speech_ms: float | None = None, level_db: float | None = None) -> list[TurnEvent]:
        """One window's speech probability; returns what happened at its end. `min_speech_ms`
        overrides the voiced time a turn needs to start: the companion is speaking, and this is a
        barge-in (see the module's note; infinite: barge-in is off for now). `level_db`: the
        window's power in dBFS, when known (see TurnConfig.background_db)."""
        start, self._pos = self._pos, self._pos + self.window
        events: list[TurnEvent] = []
        power = None if level_db is None else 10 ** (level_db / 10)
        barging = min_speech_ms is not None and not self._in_turn
        if power is not None:
            self._powers.append(power)
            if not barging and self._under_the_user():
                prob = 0.0
        if self._after_end:
            self._after_end -= 1
        voiced = prob >= self.config.threshold or (self._in_turn and self._silence == 0 and prob >= self._neg)
        self._recent.append((voiced, start))
        sure = prob >= self.config.barge_in_threshold
        self._sure_run = self._sure_run + 1 if sure else 0
        if not sure:
            self._run_powers.clear()
        elif power is not None:
            self._run_powers.append(power)
        if min_speech_ms is not None and barging:
            return self._barge_in(sure, min_speech_ms)
        self._holding = False
        if voiced:
            resuming = self._in_turn and self._paused
            if resuming:
                self._before_run = (self.last_voiced_end, (self._turn_power[0], self._turn_power[1]))
            self._silence = 0.0
            self.last_voiced_end = self._pos
            if self._in_turn and power is not None:
                self._turn_power[0] += power
                self._turn_power[1] += 1
            voiced_ms = self._ms * sum(v for v, _ in self._recent)
            if not self._in_turn and voiced_ms >= self.config.min_speech_ms:
                self._begin(events)
            elif resuming:
                self._paused = False
                events.append(TurnEvent(TurnEventKind.RESUME, start))
            return events
        if not self._in_turn:
            return events
        self._silence += self._ms
        if not self._paused and self._silence >= self.config.speculate_after_ms:
            self._paused = True
            self._undo_someone_elses_run()
            events.append(TurnEvent(TurnEventKind.PAUSE, self.last_voiced_end))
        if self._silence >= self.config.end_of_turn_ms:
            events.append(self.end_turn())
        return events

    def _undo_someone_elses_run(self) -> None:
        """At the pause after speech that had taken the turn up again: if that speech, as a
        whole, was far under the user's level before it, it was someone else. The turn then ends
        where the user fell silent, and their silence counts from there."""
        before, self._before_run = self._before_run, None
        if before is None:
            return
        voiced_end, level = before
        windows = self._turn_power[1] - level[1]
        if windows == 0:  # no level heard since (a window without one)
            return
        mean = (self._turn_power[0] - level[0]) / windows
        if _far_under(mean, level, self.config.background_run_db):
            self.last_voiced_end, self._turn_power = voiced_end, [level[0], level[1]]
            self._silence = (self._pos - voiced_end) * self._ms / self.window

    def _begin(self, events: list[TurnEvent]) -> None:
        self._in_turn, self._holding = True, False
        self._turn_power, self._after_end = [0.0, 0], 0
        self._before_run = None
        first = next((at for v, at in self._recent if v), self._pos - self.window)
        self._recent.clear()
        events.append(TurnEvent(TurnEventKind.START, first))

    def _barge_in(self, sure: bool, needed_ms: float) -> list[TurnEvent]:
        """A window while the companion speaks. Only unbroken sure speech counts, for the hold as
        for the barge-in: the canceller's leftovers are scattered voiced windows, and a short sound
        leaves a tail of uncertain ones (counted with their gaps, a short "really?" can add up to a
        barge-in). While held, the reply stays paused through the gaps
        between words ("Wait... stop"), so the wait for an unbroken run is silent."""
        events: list[TurnEvent] = []
        if sure:
            self.last_voiced_end = self._pos
        if math.isinf(needed_ms):  # barge-in is off for now
            if self._holding:
                self._holding = False
                events.append(TurnEvent(TurnEventKind.RELEASE, self._pos))
            return events
        run_ms = self._ms * self._sure_run
        someone_else = sure and self._run_under_the_user()
        if run_ms >= needed_ms and not someone_else:
            self._begin(events)
        elif not self._holding:
            if self._hold_cooldown:
                self._hold_cooldown -= 1
            elif sure and run_ms >= min(self.config.barge_in_hold_ms, needed_ms) and not someone_else:
                self._holding, self._held_quiet, self._held_for = True, 0, 0
                events.append(TurnEvent(TurnEventKind.HOLD, self._pos - self._sure_run * self.window))
        else:
            self._held_for += 1
            self._held_quiet = 0 if sure else self._held_quiet + 1
            # Voices in the room (a radio, people talking nearby) can keep coming in short runs
            # without a phrase ever taking the turn: after a while the reply goes on, and is not
            # paused again for as long (a real barge-in still stops it).
            if self._ms * self._held_for >= self.config.barge_in_hold_max_ms:
                self._hold_cooldown = round(self.config.barge_in_hold_max_ms / self._ms)
            if self._hold_cooldown or self._ms * self._held_quiet >= self.config.barge_in_release_ms:
                self._holding = False
                events.append(TurnEvent(TurnEventKind.RELEASE, self._pos))
        return events


def _far_under(power: float, level: Sequence[float], below_db: float) -> bool:
    """Whether `power` is more than `below_db` under the mean of `level` (sum of powers,
    windows); never with no level yet."""
    total, windows = level
    if windows == 0:
        return False
    return 10 * math.log10(power + 1e-12) < 10 * math.log10(total / windows) - below_db


def has_speech(vad: SileroVad, audio: np.ndarray, config: TurnConfig = TurnConfig()) -> bool:
    """Whether a whole recording holds at least one turn's worth of speech."""
    if len(audio) == 0 or float(np.max(np.abs(audio))) < 1e-3:  # below -60 dBFS: silence
        return False
    vad.reset()
    detector = TurnDetector(config)
    try:
        for prob in vad.push(audio):
            if detector.push(prob):
                return True
        return False
    finally:
        vad.reset()
