"""usvflow.io"""
