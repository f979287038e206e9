"""usvflow.sync"""
