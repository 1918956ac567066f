"""Errors raised by the loss library."""

from mirrorpo.errors import MirrorpoError


class LossInputError(MirrorpoError):
    """A batch, a hyper-parameter or a loss name that a loss cannot accept."""


class UnknownLossError(LossInputError, KeyError):
    """A loss name that is not in the registry (the message lists the valid ones)."""

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0]) if self.args else ""


class ObjectiveFileError(MirrorpoError):
    """An MPO objective file that is missing, corrupt or of an unknown format."""
