"""pipelines/progress"""
