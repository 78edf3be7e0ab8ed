"""The two exceptions of the data layer."""


class DatasetError(ValueError):
    """Input data that cannot be used: a missing or malformed file, split, key or value.

    The message names the file, the split and the key at fault and what was expected, so
    that a user can fix the input without reading the code.
    """


class DatasetNotBuiltError(FileNotFoundError):
    """A dataset was asked for but is not built; the message gives the build command."""
