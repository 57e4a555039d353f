"""transforms/quality"""
