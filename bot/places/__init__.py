"""Places: the gazetteer of Ukraine's and Russia's administrative units, towns, villages and districts."""

from bot.places.gazetteer import Entry, Gazetteer, Place, load_gazetteer

__all__ = ["Entry", "Gazetteer", "Place", "load_gazetteer"]
