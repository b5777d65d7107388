"""Bridge core: config, mapping of readings onto agent sensors and metrics, scheduling."""
