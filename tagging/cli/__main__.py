"""``python -m tagging.cli``."""
from __future__ import annotations

import sys

from tagging.cli.main import main

sys.exit(main())
