"""transforms/pii"""
