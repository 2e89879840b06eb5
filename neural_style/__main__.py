"""``python -m neural_style``: the ``neural-style`` command (see ``neural_style.cli``)."""

from .cli import main

raise SystemExit(main())
