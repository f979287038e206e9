"""usvflow.usv"""
