"""Few-shot prompt templates shipped as data files."""
