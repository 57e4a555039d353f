"""runners/local"""
