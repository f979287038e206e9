"""usvflow.simulate"""
