"""The one exception type the CLI turns into a one-line ``Error: ...`` message."""


class EdgeAVSError(Exception):
    """A user-facing error: bad input, a file that does not fit, an option out of range.

    The message is one line and names the file or option and what is wrong.
    """
