"""Workers: lease batches from the line and decide them."""

from __future__ import annotations
