"""usvflow.ephys"""
