"""The one exception type whose message is meant for the user."""


class PairzooError(Exception):
    """A user-facing error: the CLI prints its message and exits non-zero."""
