"""Alert rules: normalization, morphology, the matching engine and the TOML loader.

Rules know nothing of Telegram: they see a `Document` (text, channel id, username, tags, date).
"""

from bot.rules.engine import ALL_CLEAR, Document, Engine, Match, Verdict, verdict
from bot.rules.loader import load_rules

__all__ = ["ALL_CLEAR", "Document", "Engine", "Match", "Verdict", "load_rules", "verdict"]
