"""Errors users see. Each message names the problem and how to fix it."""


class MirrorpoError(ValueError):
    """Base class of every user-facing mirrorpo error."""
