"""The chapter's figures as a pipeline: each figure declares the runs it needs (``specs``), the
build trains what the cache lacks (``ftcore``) and draws the figure from the records (``viz``).

``python -m chapter`` (``make figures``) regenerates every figure; ``--quick`` is the small version CI runs.
"""
