"""The one exception every refused file ends in."""


class UnsafeFileError(ValueError):
    """
    A model, buffer, bundle, demonstrations or config file was refused before anything in it was run or allocated.

    Raised when a file references something outside the allow-list, asks for more memory than a limit allows, is not
    a regular file, or is malformed in a way the reader cannot interpret. It subclasses ``ValueError`` so code that
    caught the errors of earlier releases keeps working.
    """


class FileLimitError(UnsafeFileError):
    """A file asks for more than one of the bounds in :mod:`sb3_sacae.io.limits`; the message names how to raise it."""


class CorruptFileError(UnsafeFileError):
    """A file is truncated or malformed (a bad zip, a broken pickle, an entry of the wrong type)."""


class FileMismatchError(UnsafeFileError):
    """A well-formed file that does not fit the model it is loaded into (other spaces, sizes or classes)."""
