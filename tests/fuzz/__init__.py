"""The large input fuzz harness (a script, not collected by pytest)."""
