"""``python -m gpualloc.cli``."""

from . import main

main()
