"""``python -m autoinit``: the command line (see :mod:`autoinit.cli`)."""

from autoinit.cli import main

raise SystemExit(main())
