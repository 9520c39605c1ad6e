"""Benchmarks (run as scripts: python bench/<name>.py) and the helpers they share."""
