"""EventPro: sell a fixed stock of tickets under a flash-sale spike."""

from __future__ import annotations

__version__ = "0.1.0"
