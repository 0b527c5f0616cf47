"""A plugin whose import fails: the registry must report it, not crash."""

raise ImportError("this plugin is broken on purpose")
