"""`python -m selftrain_cli`: the `selftrain` console script without installing it."""

import sys

from selftrain_cli.main import main

sys.exit(main())
