"""The load generator: an async HTTP client core, the baseline app and reports."""

from __future__ import annotations
