"""``python -m shelfwise``: the operator's command line (see ``shelfwise.cli``)."""

import sys

from shelfwise.cli import main

sys.exit(main())
