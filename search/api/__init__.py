"""The HTTP face of reelbase."""

from search.api.app import create_app

__all__ = ["create_app"]
