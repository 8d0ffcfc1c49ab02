"""A small exception family. Raised by the core; translated to messages only at the edges."""

from __future__ import annotations


class RelationshipError(Exception):
    """Base class of every error this product raises on purpose."""


class RulebookError(RelationshipError):
    """A rulebook is malformed: the message names the entry and what is wrong."""


class InputError(RelationshipError):
    """Input data cannot be used (no recognizable column, unreadable file, bad option)."""


class UnsafeWorkbookError(InputError):
    """A workbook was refused before parsing: hostile, corrupt, encrypted or unsupported."""


class LossyWorkbookError(InputError):
    """A workbook cannot be written back without losing something; use --results-only."""


class OutputExistsError(InputError):
    """The output file exists already and --force was not given."""
