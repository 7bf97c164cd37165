"""The command line: one module per command group; each parses input and calls the library."""
