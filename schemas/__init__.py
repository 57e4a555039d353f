"""gristmill schemas."""
