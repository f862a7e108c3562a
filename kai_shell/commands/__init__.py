"""The commands of the ``kai`` CLI, one group of related commands per module."""
