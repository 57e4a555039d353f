"""pipelines/tools"""
