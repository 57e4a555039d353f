"""pipelines/report"""
