"""Click commands, one module each; assembled by the top-level cli.py."""
