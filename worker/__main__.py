"""``python -m worker`` is ``msgworker``."""

import sys

from worker.cli import main

sys.exit(main())
