"""``python -m funchost``."""

from __future__ import annotations

import sys

from funchost.cli import main

sys.exit(main())
