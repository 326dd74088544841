"""`python -m aemt` runs the command-line interface."""

from aemt.cli import main

raise SystemExit(main())
