"""Cache invalidation only: a saved or deleted action makes every process reload the compiled actions."""

from points.matching import actions_changed


def action_saved(sender, **kwargs) -> None:
    actions_changed()
