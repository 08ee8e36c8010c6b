"""Services: one function per use case, taking ports as arguments."""

from __future__ import annotations
