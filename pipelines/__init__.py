"""gristmill pipelines."""
