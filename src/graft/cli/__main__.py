"""``python -m graft.cli``: the same as the ``graft`` command (torchrun re-runs it this way)."""

import sys

from graft.cli import main

sys.exit(main())
