"""The planner's exception family. Each message says what to do about it."""


class TaskwrightError(Exception):
    """Base class: an error whose message is fit to show a user."""


class PlanningError(TaskwrightError):
    """A plan could not be made (no model output and no playbook fit)."""


class InvalidPlanError(PlanningError):
    """Model output that does not validate as a plan; the message names the first problem."""


class ModelUnavailableError(TaskwrightError):
    """The configured model cannot be loaded or reached."""


class RosterError(TaskwrightError):
    """A team roster file is malformed; the message names the row and column."""
