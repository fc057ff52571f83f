"""Exit codes of every lvm-workbench command, in one place."""

OK = 0
ERROR = 1  # an unexpected failure (a bug) or a diverged/failed run: one line; the traceback goes to a file (--debug prints it)
BAD_INPUT = 2  # a bad file, plan, key or argument: one line printed
GATE_FAILED = 3  # a required gate failed (5cat, a plan's [gates] with required = true) or a stop tripwire fired
ENVIRONMENT = 4  # the machine refused: no space, no permission, a read-only folder, a missing device
INTERRUPTED = 130  # Ctrl-C (training saves `last` first)
