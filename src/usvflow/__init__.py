"""usvflow: the library behind the usvflow Snakemake workflow.

One sub-package per domain (``io``, ``audio``, ``usv``, ``sync``, ``video``, ``pose``, ``ephys``,
``simulate``); pure functions on arrays and paths. The ``usvflow`` command (``usvflow.cli``) runs every
step on its own.
"""

__version__ = "0.1.0"
