"""Serving: settings in, listeners bound, one worker or a supervisor of several, signals.

``run`` checks and binds, ``worker`` serves in one process, ``supervisor`` forks and replaces
workers, ``sockets`` opens the binds, ``check`` is ``--check``. Hypercorn's Config, filled
from the settings, is the wire's (wire/config.py).
"""
