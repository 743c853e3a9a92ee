"""tgmon: archive public Telegram channels and alert analysts when posts talk about danger."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tgmon")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
