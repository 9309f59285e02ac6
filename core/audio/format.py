"""The audio format the core works in, from the microphone to the engines: mono float32 at
16 kHz (the rate of a user's turn in the engine contract), in 10 ms frames."""

from __future__ import annotations

from models.engine import SPEECH_RATE

RATE = SPEECH_RATE  # samples per second of every stream between the devices' resamplers and the engines
FRAME_MS = 10  # the audio worker's step: echo cancellation, voice activity and turn events per frame
FRAME = RATE * FRAME_MS // 1000  # samples per frame (160)
