"""The front ends: the command lines (``cli``), the notebook's panel and figures (``notebook``), and
what both use: the options they offer (``options``), progress displays (``progress``) and signals
that end a run (``interrupts``). Nothing below the front ends imports from here."""
