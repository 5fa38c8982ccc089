"""``python -m runtime.update``: the same as ``rc-update``."""

import sys

from runtime.update.cli import main

sys.exit(main())
