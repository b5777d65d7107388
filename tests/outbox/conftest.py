"""The outbox tests' fixtures live in outbox_support.py, next to the helpers they use."""

from outbox_support import tiny_fs  # noqa: F401  (a fixture)
