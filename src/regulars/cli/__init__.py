"""The `regulars` command line (Typer + Rich)."""
