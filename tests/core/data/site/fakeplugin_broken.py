"""A plugin whose import fails: the host must log it and start anyway."""

raise ImportError("fakeplugin_broken needs a library that is not installed")
