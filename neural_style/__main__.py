"""``python -m neural_style``: the ``neural-style`` command (see ``neural_style.app.cli.main``)."""

from .app.cli.main import main

raise SystemExit(main())
