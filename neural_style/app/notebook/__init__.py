"""The notebook's front end: the interactive panel (``panel``, with its controls in ``form``, its
drawing in ``view`` and the job it describes in ``jobs``) and the figures (``figures``, which need
matplotlib)."""
