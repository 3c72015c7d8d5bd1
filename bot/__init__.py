"""accessbot: weekly access reviews for Microsoft 365 / Entra ID, in Microsoft Teams."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("accessbot")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0"
