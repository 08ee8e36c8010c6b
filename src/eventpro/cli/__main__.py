"""`python -m eventpro.cli`."""

from __future__ import annotations

from eventpro.cli.main import main

main()
