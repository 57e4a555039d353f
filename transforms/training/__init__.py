"""transforms/training"""
