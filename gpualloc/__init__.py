"""gpualloc: share scarce AI accelerators among portfolio start-ups, with a proven bound."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"
