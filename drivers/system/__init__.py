"""Quantities of the Pi itself, and the mock sensor that stands in for hardware on a laptop."""
