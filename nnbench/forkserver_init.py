"""What the fork server that starts the runs' processes imports first (its
preload; nothing else imports this module).

Ctrl-C at a terminal signals the whole foreground process group, run
processes included. Stopping runs is the runner's job, through their
supervisors; a run's process interrupted while it is still starting would
print multiprocessing's traceback instead. The fork server gives each child
the signal handlers it had before it set its own, so ignoring SIGINT here
makes every run's process ignore it from its first instruction. (The server
itself starts with SIGINT blocked, see ``isolation._start_server``, so that
Ctrl-C cannot reach it before this line either.)
"""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: the imports below take a while

import nnbench.worker  # noqa: E402, F401  (what every run imports, loaded once here)
