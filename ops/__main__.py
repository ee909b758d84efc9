"""`python -m ops`: the operator CLI."""

import sys

from ops.cli import main

sys.exit(main())
