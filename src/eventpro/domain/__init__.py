"""The domain core: events, sections, seats, purchases, orders and their rules. No I/O."""

from __future__ import annotations
