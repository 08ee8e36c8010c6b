"""One module per noun of the contract."""

from __future__ import annotations
