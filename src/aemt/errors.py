"""Exceptions shared across stages."""


class UserError(Exception):
    """An error caused by input or configuration; the CLI prints it without a traceback.

    The message names the file, row, column or clip at fault and says what to do.
    """
