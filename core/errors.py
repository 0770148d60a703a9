"""Exceptions a plugin may raise to tell the host something precise."""


class Unavailable(Exception):
    """Raise from ``build_metadata`` when the item is yours but cannot be served right now
    (e.g. Stash is down and nothing is cached). If no other plugin answers, the host
    replies 503 with this message instead of 404."""
