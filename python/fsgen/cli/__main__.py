"""`python -m fsgen.cli`: the fsgen command."""
import sys

from . import main

sys.exit(main())
