"""saferun: start containers hardened by default."""

__version__ = "0.1.0"
