"""CLI command groups; each module registers its commands on ``gpualloc.cli.app``."""
