"""The `eventpro` command line."""

from __future__ import annotations
