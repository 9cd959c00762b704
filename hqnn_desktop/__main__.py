"""``python -m hqnn_desktop``: same as the ``hqnn-desktop`` command."""

import sys

from .cli import main

sys.exit(main())
