"""``python -m funchost``."""

from __future__ import annotations

from funchost.cli import console_main

console_main()
