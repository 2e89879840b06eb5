"""The ``neural-style`` command (``main``: parser and entry point; ``preflight``: what is checked
before the network loads, and the folder mode; ``runs``: the runs and their results) and the
``neural-style-texture-net`` command (``texture``)."""
