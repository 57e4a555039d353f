"""gristmill: raw text in, clean and accounted-for training data out."""

__version__ = "0.1.0"
