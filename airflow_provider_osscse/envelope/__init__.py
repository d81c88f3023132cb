"""envelope"""
