"""Interpreter settings of the API processes (`eventpro serve`)."""

from __future__ import annotations

import gc
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
# The cyclic garbage collector's full collections walk every object the process holds,
# and most of them are the modules, routes and schemas loaded at start. With the default
# thresholds (700, 10, 10), 30 s of the embedded bench ran about 20 full collections of
# up to 63 ms each (1 s in all), beside 0.8 s of younger ones: the stalls at the tail of
# the latency. Those objects are frozen out of its reach once the app is built, and the
# youngest generation is collected every 20,000 allocations (docs/perf.md).
GC_THRESHOLDS = (20_000, 20, 20)


def tune_interpreter() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_startup_objects() -> None:
    """Keep what the process holds now (modules, the app) out of every later collection;
    what is garbage already is collected first, so none of it is kept for ever."""
    gc.collect()
    gc.freeze()
