"""`python -m search.cli ARGS` runs `reelbase ARGS` (how tests, the bench and `reelbase ui` start it)."""

import sys

from search.cli import main

sys.exit(main())
