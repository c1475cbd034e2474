"""An input policy whose worker process dies, for the batch-run tests. Its own module, importing only hf-ser's
input policy, so that the spawned workers which unpickle it start fast."""

from __future__ import annotations

import os

from hf_ser.input_policy import InputPolicy


class CrashesOnLongClips(InputPolicy):
    """Dies, as a crash of the decoder would, on clips of 2.5 s or more."""

    def speech(self, wave, rate):
        if len(wave) >= 2.5 * rate:
            os._exit(1)
        return super().speech(wave, rate)
