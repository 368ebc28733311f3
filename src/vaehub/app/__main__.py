"""`python -m vaehub.app`: the same as `vaehub app`."""

import sys

from vaehub.app.launch import main

sys.exit(main())
