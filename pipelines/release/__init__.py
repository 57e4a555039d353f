"""pipelines/release"""
