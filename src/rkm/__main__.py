"""``python -m rkm`` runs the ``rkm`` command."""

import sys

from .cli import main

sys.exit(main())
