"""The `selftrain` command line: one module per command group, each importing its work lazily."""
