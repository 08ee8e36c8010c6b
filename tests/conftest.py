"""Fixtures every test directory may use: the AWS emulator and adapters on it."""

from __future__ import annotations

pytest_plugins = ["tests.aws_support"]
