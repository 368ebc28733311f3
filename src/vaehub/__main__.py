"""`python -m vaehub ARGS`: `vaehub ARGS` where the scripts folder is not on PATH."""

import sys

from vaehub.commands.main import main

sys.exit(main())
