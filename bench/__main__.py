"""`python -m bench` runs the assignment benchmark (the only one so far)."""

import sys

from bench.assign import main

sys.exit(main())
