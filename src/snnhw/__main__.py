"""``python -m snnhw``: the ``snnhw`` command (also ``torchrun -m snnhw train ...``)."""

import sys

from snnhw.cli import main

sys.exit(main())
