"""Serving: settings in, listeners bound, one worker or a supervisor of several, signals.

``run`` checks and binds, ``worker`` serves in one process, ``supervisor`` forks and replaces
workers, ``sockets`` opens the binds, ``hypercorn_config`` fills Hypercorn's Config, ``check``
is ``--check``.
"""
