"""Failures a user causes and can fix: a wrong path, a bad record, a query that returns nothing usable.

The command line shows them as one line (what, where, what to do) with exit code 2; anything
else is an internal bug and keeps its traceback. Lower layers raise ``UserError`` so that
``pipelines`` need not guess which ``ValueError`` is whose fault.
"""


class UserError(Exception):
    """A mistake in the config, the inputs or the environment, described so that the user can fix it."""
