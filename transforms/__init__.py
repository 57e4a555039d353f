"""gristmill transforms."""
