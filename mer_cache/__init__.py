"""mer-cache: cached CNN embeddings and temporal heads for micro-expression recognition."""

__version__ = "0.1.0"
