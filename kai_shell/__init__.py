"""kai_shell."""
