"""Bundled recipes (YAML)."""
