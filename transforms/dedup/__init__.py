"""transforms/dedup"""
