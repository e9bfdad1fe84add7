"""The `sanji` command: dispatches to the hub and node CLIs, and tells the demo story."""

__version__ = "0.1.0"
