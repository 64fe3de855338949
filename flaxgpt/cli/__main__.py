"""``python -m flaxgpt.cli``: the ``flaxgpt`` command."""

import sys

from flaxgpt.cli.main import main

sys.exit(main())
