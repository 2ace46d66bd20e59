"""The `aivenator` command line: one module per command, `main` dispatches."""
