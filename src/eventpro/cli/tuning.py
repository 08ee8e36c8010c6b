"""Interpreter settings of the API processes (`eventpro serve`)."""

from __future__ import annotations

import sys

# A thread waiting for the interpreter lock gets it, while another thread keeps it busy,
# only after this interval (5 ms by default). The admission writer thread retakes it
# after every SQL statement while the event loop runs Python: at 5 ms, a group of
# admissions spent most of its time waiting for the lock. Alternating wrk runs of the
# embedded server, admissions/s (means of 3): 5,451 at 5 ms, 5,766 at 1 ms, 5,913 at
# 0.5 ms; later, after other changes, 5,698 at 0.5 ms, 6,416 at 0.25 ms, 6,473 at
# 0.1 ms. Worker decisions measured the same at 5 and 0.5 ms, so `eventpro worker`
# keeps the default.
SWITCH_INTERVAL = 0.00025  # seconds


def tune_interpreter() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
