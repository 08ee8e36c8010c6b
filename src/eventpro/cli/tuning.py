"""Interpreter settings of the API processes (`eventpro serve`)."""

from __future__ import annotations

import sys

# A thread waiting for the interpreter lock gets it, while another thread keeps it busy,
# only after this interval (5 ms by default). The admission writer thread retakes it
# after every SQL statement while the event loop runs Python: at 5 ms, a group of
# admissions spent most of its time waiting for the lock. Alternating wrk runs: +8%
# admissions/s at 0.5 ms, +6% at 1 ms. (Worker decisions measured the same either way.)
SWITCH_INTERVAL = 0.0005  # seconds


def tune_interpreter() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
