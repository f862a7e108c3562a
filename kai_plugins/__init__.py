"""kai_plugins."""
