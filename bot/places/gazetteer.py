"""The gazetteer: Ukraine's and Russia's places, every name in every form, loaded from package data.

Two files under `data/`, written by `tools/build_gazetteer.py` (never at run time):

- `places.tsv.gz`: one place a line (id, kind, country, code, parent id, weight for `find`, names),
  gzipped (0.6 MB instead of 2.2; 20 ms to unpack). Kept as bytes with the offset of each line,
  decoded only for the places asked about: most of the 30,000 villages are never looked at, and a
  Python object for each would cost 25 MB and 0.2 s at start.
- `forms.marisa`: a marisa-trie from every folded word form of every name (108,000 forms) to the
  (place, name, word position, name length, flags) records it belongs to (223,000). 1.2 MB of C
  structure that loads in milliseconds; the same records in a dict take 0.7 s and 47 MB.

A multi-word name ("Біла Церква", "Київська область", "Ростов-на-Дону") contributes one record per
word, so a matcher walks a post's tokens and checks that consecutive words belong to the same name.
"""

from __future__ import annotations

import gzip
import re
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from itertools import compress, repeat
from operator import is_not
from pathlib import Path

import marisa_trie

from bot.rules.normalize import tokenize

# One record of forms.marisa: place id, name index, word position, words in the name, flags.
RECORD_FORMAT = "<IBBBB"
FLAG_AMBIGUOUS = 1  # the form is also a common word: require a capital letter or a place context
FLAG_BASE = 2  # the form is the name's own word as written (nominative), not an inflected one
FLAG_GROUP = 4  # the name is several places' at once ("Борщагівки"): a matcher names them all

KINDS = ("country", "oblast", "city", "raion", "district", "village")
# Which of several places with one name an operator most likely means: the bigger unit first.
_KIND_RANK = {kind: rank for rank, kind in enumerate(KINDS)}

# Words an operator may put before or after a name in config: type prefixes ("м. Київ", "с. Мирне")
# and abbreviated type words ("Київська обл.", "Обухівський р-н").
_PREFIXES = frozenset({"м", "місто", "с", "село", "смт", "селище", "сщ", "г", "город", "пгт", "пос", "п", "д"})
_ABBREVIATIONS = {"обл": "область", "р": "район", "окр": "округ"}
_LOOKUP_CACHE = 65536
_NO_ENTRIES: tuple[Entry, ...] = ()
# What a typo may put in a name: the two alphabets' letters and the apostrophe (see `near`).
_TYPO_LETTERS = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюяыэъ'"
_ISO_CODE = re.compile(r"(?:UA|RU)(?:-[A-Z0-9]{1,3})?|UA\d{17}")


@dataclass(frozen=True, slots=True)
class Place:
    """A place. `name` is displayed (Ukrainian for Ukraine, Russian for Russia); `names` holds it first,
    then every other name in every language (Russian, Latin, informal) for display and config lookup.

    `code` is the ISO 3166-2 code for countries ("UA"), oblasts, Crimea, Kyiv, Sevastopol and Russian
    regions ("UA-32", "RU-BEL"), the KATOTTG code for other Ukrainian places ("UA32…"), None for
    Kyiv's neighbourhoods and Russian towns. `parent` is the enclosing place: village → raion →
    oblast → country; a city district → its city; Kyiv and Sevastopol → the country.
    """

    id: int
    name: str
    kind: str  # one of KINDS
    country: str  # "UA" | "RU"
    code: str | None
    parent: int | None
    names: tuple[str, ...]
    weight: int = 0  # among namesakes, the one meant unless told otherwise: oblast centres, then cities the news names


@dataclass(frozen=True, slots=True)
class Entry:
    """One word of one name of one place, as `Gazetteer.lookup` finds it.

    `name` indexes `Place.names`; the name has `words` words and this is word number `word` (from 0).
    `ambiguous`: the form is also a common word ("мирне" = peaceful): a matcher should want a capital
    letter or a place context. For a name of several words the flag is the whole name's: set when
    every word but the type word ("область", "район") is common ("біла церква" = a white church).
    `base`: the form is the word as the name is written, not an inflected form ("Київ", not "Києві").
    `group`: the name is one of several places at once ("Борщагівки" for both Borshchahivkas).
    """

    place: int
    name: int
    word: int
    words: int
    ambiguous: bool
    base: bool
    group: bool = False


def _data_dir() -> Path:
    return Path(str(files("bot.places") / "data"))


class Gazetteer:
    """Read-only access to the shipped gazetteer; build it once with `load_gazetteer()`."""

    def __init__(self, places: Path, forms: Path) -> None:
        self._rows = gzip.decompress(places.read_bytes())
        starts = array("I")
        position = 0
        for line in self._rows.split(b"\n"):
            if line and not line.startswith(b"#"):
                starts.append(position)
            position += len(line) + 1
        self._starts = starts
        self._trie = marisa_trie.RecordTrie(RECORD_FORMAT)
        self._trie.load(str(forms))
        self._places: dict[int, Place] = {}
        self._entries: dict[str, tuple[Entry, ...]] = {}
        self._lineages: dict[int, frozenset[int]] = {}
        self._oblasts: dict[int, Place | None] = {}
        self._codes: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self._starts)

    def __contains__(self, form: object) -> bool:
        """Is a folded word a form of some place name? Fast, for a matcher's first filter."""
        return isinstance(form, str) and form in self._trie

    def __iter__(self) -> Iterator[Place]:
        """Every place, in id order; not kept in memory (a scan is for tests and tools)."""
        return (self._places.get(place_id) or self._parse(place_id) for place_id in range(len(self)))

    def lookup(self, form: str) -> Sequence[Entry]:
        """Entries of a word form, folded as `bot.rules.normalize.normalize_word` folds a post token
        (casefolded, ё→е, apostrophes unified): "києві" → Kyiv's "Київ", word 0 of 1. Empty for a
        word that names no place. Cached: a feed repeats its place names."""
        found = self._entries.get(form)
        if found is None:
            if len(self._entries) >= _LOOKUP_CACHE:
                self._entries.clear()
            found = self._entries[form] = self._decode(form)
        return found

    def _decode(self, form: str) -> tuple[Entry, ...]:
        return (
            tuple(
                Entry(
                    place,
                    name,
                    word,
                    words,
                    bool(flags & FLAG_AMBIGUOUS),
                    bool(flags & FLAG_BASE),
                    bool(flags & FLAG_GROUP),
                )
                for place, name, word, words, flags in sorted(self._trie.get(form, ()))
            )
            or _NO_ENTRIES
        )

    def near(self, form: str) -> list[Entry]:
        """Entries of the forms one typo from `form`: a letter missing, extra or wrong, or two swapped
        ("мархаліака" for "мархалівка"). About 700 trie lookups for a word of ten letters: for a post
        nothing else names, not for every word; not cached."""
        splits = [(form[:i], form[i:]) for i in range(len(form) + 1)]
        variants = {head + tail[1:] for head, tail in splits if tail}
        variants |= {head + tail[1] + tail[0] + tail[2:] for head, tail in splits if len(tail) > 1}
        variants |= {head + letter + tail[1:] for head, tail in splits if tail for letter in _TYPO_LETTERS}
        variants |= {head + letter + tail for head, tail in splits for letter in _TYPO_LETTERS}
        variants.discard(form)
        return [entry for variant in sorted(variants) if variant in self._trie for entry in self._decode(variant)]

    def naming(self, forms: Sequence[str]) -> list[int]:
        """Indices of the forms that name a place. A feed's words were mostly seen before: those the
        cache knows name nothing are passed over at C speed, the others looked up."""
        unknown_or_named = map(is_not, map(self._entries.get, forms), repeat(_NO_ENTRIES))
        return [index for index in compress(range(len(forms)), unknown_or_named) if self.lookup(forms[index])]

    def place(self, place_id: int) -> Place:
        """The place with this id; IndexError for an unknown one."""
        found = self._places.get(place_id)
        if found is None:
            found = self._places[place_id] = self._parse(place_id)
        return found

    def _row(self, place_id: int) -> list[str]:
        if not 0 <= place_id < len(self._starts):
            raise IndexError(f"no place {place_id}")
        start = self._starts[place_id]
        end = self._rows.find(b"\n", start)
        fields = self._rows[start : end if end >= 0 else None].decode("utf-8").split("\t")
        if len(fields) != 7 or int(fields[0]) != place_id:
            raise ValueError(f"places.tsv.gz: bad line for place {place_id}")
        return fields

    def _parse(self, place_id: int) -> Place:
        _, kind, country, code, parent, weight, names = self._row(place_id)
        all_names = tuple(names.split("|"))
        return Place(
            place_id, all_names[0], kind, country, code or None, int(parent) if parent else None, all_names, int(weight)
        )

    def ancestors(self, place_id: int) -> list[Place]:
        """The enclosing places, nearest first, the country last."""
        out = []
        parent = self.place(place_id).parent
        while parent is not None:
            place = self.place(parent)
            out.append(place)
            parent = place.parent
        return out

    def oblast_of(self, place_id: int) -> Place | None:
        """The oblast-level unit a place is in, the place itself included: an oblast or Crimea, Kyiv or
        Sevastopol (special status: they belong to no oblast), a Russian region or federal city. None
        for a country."""
        if place_id in self._oblasts:
            return self._oblasts[place_id]
        found = None
        for place in [self.place(place_id), *self.ancestors(place_id)]:
            if place.kind == "oblast" or (place.parent is not None and self.place(place.parent).kind == "country"):
                found = place
                break
        if len(self._oblasts) >= _LOOKUP_CACHE:
            self._oblasts.clear()
        self._oblasts[place_id] = found  # cached: each alert asks for its places' oblasts several times
        return found

    def within(self, place_id: int, ancestor_id: int) -> bool:
        """Is a place inside another one, or the same place? (Routing: a destination for Kyiv oblast
        gets Brovary's alerts.)"""
        return ancestor_id in self.lineage(place_id)

    def lineage(self, place_id: int) -> frozenset[int]:
        """The place and every place it is in, as ids: `within` for many places at once, cached."""
        found = self._lineages.get(place_id)
        if found is None:
            if len(self._lineages) >= _LOOKUP_CACHE:
                self._lineages.clear()
            found = self._lineages[place_id] = frozenset({place_id, *(p.id for p in self.ancestors(place_id))})
        return found

    def find(self, name: str) -> list[Place]:
        """Places an operator means by a name in config, the most likely first.

        Takes any name in any form and language ("Київська область", "Kyiv", "Белгородская обл.",
        "Шулявка", "м. Бровари"), a code ("UA-32", "RU-BEL", a KATOTTG code), or "name, enclosing
        place" to pick one of several ("Мирне, Запорізька область"). Ranked country, oblast, city,
        raion, district, village; then oblast centres, then cities the channels name, then places whose
        displayed name it is; then codifier order.
        """
        if "," in name:
            head, _, rest = name.partition(",")
            scopes = self.find(rest)
            return [p for p in self.find(head) if any(self.within(p.id, s.id) and p.id != s.id for s in scopes)]
        text = name.strip().lstrip("@#").strip()
        if _ISO_CODE.fullmatch(text):
            found = self._by_code().get(text)
            return [] if found is None else [self.place(found)]
        words = self._config_words(text)
        if not words:
            return []
        matches: set[tuple[int, int]] | None = None
        for position, word in enumerate(words):
            here = {(e.place, e.name) for e in self.lookup(word) if e.word == position and e.words == len(words)}
            matches = here if matches is None else matches & here
        places = {place for place, _ in matches or ()}
        folded = " ".join(words)

        def rank(place_id: int) -> tuple[int, int, int, int]:
            place = self.place(place_id)
            own = " ".join(t.text for t in tokenize(place.name)) == folded
            return (_KIND_RANK.get(place.kind, len(KINDS)), -place.weight, 0 if own else 1, place_id)

        return [self.place(place_id) for place_id in sorted(places, key=rank)]

    @staticmethod
    def _config_words(text: str) -> list[str]:
        """A config name's folded words, type prefixes dropped and abbreviations spelled out."""
        words = [token.text for token in tokenize(text)]
        if len(words) > 1 and words[0] in _PREFIXES:
            words = words[1:]
        out: list[str] = []
        index = 0
        while index < len(words):
            word = words[index]
            if word == "р" and index + 1 < len(words) and words[index + 1] in ("н", "ну", "ні", "на"):
                index += 1  # "р-н", "р-ну", "р-ні": tokenized as two words
            out.append(_ABBREVIATIONS.get(word, word) if out else word)
            index += 1
        return out

    def _by_code(self) -> dict[str, int]:
        """Code → place id, built on the first lookup by code (config loading, not the hot path)."""
        if self._codes is None:
            codes = {}
            for line in self._rows.split(b"\n"):
                if line and not line.startswith(b"#"):
                    row_id, _, _, code, _ = line.split(b"\t", 4)
                    if code:
                        codes[code.decode()] = int(row_id)
            self._codes = codes
        return self._codes


@cache
def load_gazetteer() -> Gazetteer:
    """The shipped gazetteer, loaded once per process (~25 ms, ~4 MB)."""
    data = _data_dir()
    return Gazetteer(data / "places.tsv.gz", data / "forms.marisa")
