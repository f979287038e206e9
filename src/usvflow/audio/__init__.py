"""usvflow.audio"""
