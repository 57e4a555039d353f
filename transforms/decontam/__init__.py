"""Decontamination: documents that share long n-grams with evaluation sets the user names."""
