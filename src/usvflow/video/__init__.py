"""usvflow.video"""
