"""``python -m evonas``: the ``evonas`` command line."""
import sys

from evolution.cli import main

sys.exit(main())
