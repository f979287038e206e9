"""usvflow.pose"""
