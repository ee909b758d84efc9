"""HTTP routes, one module per concern; the logic they call lives in `domain/`."""
