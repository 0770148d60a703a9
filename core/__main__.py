"""``python -m stash2plex`` is the ``stash2plex`` command."""

import sys

from .cli import main

sys.exit(main())
