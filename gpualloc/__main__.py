"""``python -m gpualloc``."""

from .cli import main

main()
