"""``python -m openlora serve ...``: run the worker without the node's CLI."""

import sys

from openlora.cli import main

sys.exit(main())
