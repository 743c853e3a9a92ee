"""Places named in a post: which, where in the text, and what the post says of them.

Monitoring channels write "2 на Київ", "Васильків зі сходу!!", "мопед курсом на Бровари", "8 КР на
Білоцерківський р-н": the finder reports each place with its offsets, the count and the direction
written next to it, and whether it is named as a target. It reads words, not Telegram: the same
text gives the same places in the service, in `tgmon rules check` and in tests.

Names are looked up in every inflected form (the gazetteer holds them all), so the cost is one trie
lookup a word. A form that is also a common word ("Мирне", "Українка", "Поділ") counts only with a
capital letter where a sentence does not begin, or with a place context: a preposition of motion
before it, a direction or a count beside it, or a post that is nothing but the name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.places.gazetteer import Entry, Gazetteer, Place
from bot.rules.normalize import FOLDED_WORD_RE, Token, blank_links, fold_mixed_words, fold_text, tokenize

# Before a place: where a threat heads ("на Київ", "курсом на Бровари", "в напрямку Обухова").
_TARGET_WORDS = frozenset(
    {"на", "до", "курсом", "напрямку", "напрямок", "бік", "направлении", "направление", "сторону", "сторони"}
)
_HEADING_WORDS = frozenset({"курсом", "напрямку", "напрямок", "бік", "направлении", "направление", "сторону"})
_MOTION_PREPOSITIONS = frozenset({"на", "до", "в", "у", "во", "к"})
_LOCATIVE_ENDINGS = ("і", "ї", "е", "ах", "ях", "ой", "ей", "ій", "ом", "ем")
# Before a place, making a common word a place: "над Мирним", "біля Калити", "в районі Поділу".
_PLACE_PREPOSITIONS = frozenset(
    {"на", "в", "у", "во", "до", "з", "із", "зі", "из", "со", "над", "під", "под", "біля", "поблизу", "возле",
     "около", "через", "по", "повз", "від", "к", "районі", "районе", "межі"}
)  # fmt: skip
_SIDES = {
    "заходу": "west", "сходу": "east", "півночі": "north", "півдня": "south",
    "запада": "west", "востока": "east", "севера": "north", "юга": "south",
    "північного": "north", "південного": "south", "северо": "north", "юго": "south",
}  # fmt: skip
_SECOND_SIDES = {"заходу": "west", "сходу": "east", "запада": "west", "востока": "east"}
_FROM_WORDS = frozenset({"з", "із", "зі", "с", "со"})
_RELATIVE = {
    "північніше": "north of", "південніше": "south of", "західніше": "west of", "східніше": "east of",
    "севернее": "north of", "южнее": "south of", "западнее": "west of", "восточнее": "east of",
}  # fmt: skip
_COUNT = re.compile(r"^(\d{1,3})(?:х|x|шт)?$")
# Type words after an adjective name: "Київська обл.", "Броварський р-н" (tokenized "р", "н").
_TYPE_ABBREVIATIONS = {"обл": "область", "рн": "район", "р": "район", "г": "город", "м": "місто", "с": "село"}
_MAX_WORDS = 6
# Words monitors put after a place name that opens a post: warnings, weapons, motion, and the small
# words that lead on to another place.
_AFTER_A_PLACE = frozenset(
    {"увага", "уважно", "бпла", "шахед", "шахеди", "шахедів", "мопед", "мопеди", "ракета", "ракети", "кр",
     "курсом", "ще", "знову", "акустика", "вибухи", "вибух", "рух", "проліт", "підліт", "залітає", "лягли",
     "навколо", "та", "і", "й", "район", "районі", "заліт", "будьте", "обережно", "обережні", "внимание",
     "ракеты", "беспилотник", "и"}
)  # fmt: skip
# Type words in any case and number, after one or several adjective names, and the kind of unit each
# follows: "райони" comes after raions' adjectives, "областей" after oblasts'.
_TYPE_FORMS = {
    **dict.fromkeys(
        ["область", "області", "областю", "областей", "областям", "областями", "областях", "обл", "области",
         "областью"],
        "oblast",
    ),
    **dict.fromkeys(
        ["район", "райони", "районы", "району", "районі", "районом", "районів", "районам", "районами", "районах",
         "района", "районе", "районов", "округ", "округа", "округе", "округу", "округов", "округах"],
        "raion",
    ),
}  # fmt: skip
# Words a post of nothing but place names may also hold: "2 на Обухів", "Хотів чабани увага", "Шахед
# чабани", "Долина красне перше два на Обухів".
_FILLER = (
    _TARGET_WORDS
    | _FROM_WORDS
    | frozenset(_SIDES)
    | frozenset(_RELATIVE)
    | frozenset(
        {"і", "й", "та", "и", "ще", "знову", "увага", "уважно", "обережно", "один", "одна", "два", "дві", "три",
         "чотири", "шахед", "шахеди", "шахедів", "мопед", "мопеди", "бпла", "кр", "ракета", "ракети"}
    )
)  # fmt: skip
_AND = frozenset({"та", "і", "й", "и", "and"})
# Cities of special status, outside the oblast around them: "Київ та область" is Kyiv oblast.
_REGION_AROUND = {"UA-30": "UA-32"}
# A sentence begins after these; so does a quoted title ("Легион «Свобода России»" names no village).
_SENTENCE_END = frozenset('.!?\n…:«"„“')


@dataclass(frozen=True, slots=True)
class Mention:
    """A place named in a text. `start`/`end` are offsets into the text as given.

    `direction`: "from west" ("з заходу"), "towards" ("курсом на"), "north of" ("північніше") where
    written. `count`: the number written before it ("2 на Київ"). `target`: named as where something
    heads. `ambiguous`: the name is also a common word, accepted here by its context.
    """

    place: Place
    start: int
    end: int
    direction: str | None = None
    count: int | None = None
    target: bool = False
    ambiguous: bool = False
    parent: str | None = None  # the enclosing place's name: a village's raion, a raion's oblast
    oblast: str | None = None  # the oblast-level unit it is in, itself included (Kyiv for Kyiv)
    lineage: frozenset[int] = frozenset()  # the place and every place it is in (routing by place)

    def as_json(self) -> dict[str, Any]:
        """As alerts carry it: `alerts.jsonl`, webhooks, `tgmon rules check`."""
        found: dict[str, Any] = {
            "name": self.place.name,
            "kind": self.place.kind,
            "parent": self.parent,
            "oblast": self.oblast,
            "country": self.place.country,
            "code": self.place.code,
            "start": self.start,
            "end": self.end,
        }
        if self.direction is not None:
            found["direction"] = self.direction
        if self.count is not None:
            found["count"] = self.count
        return found


@dataclass(frozen=True, slots=True)
class _Span:
    start: int  # token indexes, end exclusive
    end: int
    candidates: tuple[int, ...]  # place ids
    ambiguous: bool
    own_name: frozenset[int]  # the places whose displayed name this is
    shorthand: bool = False  # an oblast by its adjective alone ("в черкаську")
    base: bool = False  # written as named (the nominative), not inflected
    group: frozenset[int] = frozenset()  # places named together by this name ("Борщагівки"): all meant
    written: frozenset[int] = frozenset()  # places whose name is written here as it is, not inflected


class PlaceFinder:
    """Finds places in texts against one gazetteer. Stateless: safe to share."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer
        self._region_around = {
            city[0].id: region[0].id
            for city_code, region_code in _REGION_AROUND.items()
            if (city := gazetteer.find(city_code)) and (region := gazetteer.find(region_code))
        }

    def find(
        self, text: str, home: Sequence[int] = (), *, alarm: bool = False, tokens: Sequence[Token] | None = None
    ) -> list[Mention]:
        """Places in `text`, in text order, one mention per place (its first).

        `home`: places the channel is about (a channel's configured region): where a name fits
        several places, one inside them is chosen. `alarm`: the post is about a threat (rules matched,
        or the channel's threat is open), so a capitalized common word opening it is a place.
        """
        words = list(tokens) if tokens is not None else _words(text)
        if not words:
            return []
        spans = self._spans(words) or (self._misspelt(text, words, home) if alarm else [])
        if not spans:
            return []
        bare = self._bare(words, spans)
        # A post of nothing but names, one of them beyond doubt: the others are places too ("Мрія лісне").
        listing = bare and (
            len(spans) == 1 or any(not s.ambiguous or text[words[s.start].start].isupper() for s in spans)
        )
        kept: list[_Span] = []
        for span in spans:
            after_place = bool(kept) and kept[-1].end == span.start
            if not span.ambiguous or self._in_context(text, words, span, bare, alarm, after_place, listing):
                kept.append(span)
        sures = [self._sure(span) for span in kept]
        scope = self._scope(sures)
        lines, around = self._line_oblasts(text, words, kept, sures)
        mentions: list[Mention] = []
        seen: set[int] = set()
        heading: int | None = None  # the last oblast opening a line: "Сумщина:" heads the lines below it
        for span, sure, line in zip(kept, sures, lines, strict=True):
            local = set(around.get(line, ()))
            if heading is not None:
                local.add(heading)
            place_id = self._choose(span, sure, scope, home, local)
            if place_id is not None:
                oblast = self.gazetteer.oblast_of(place_id)
                if oblast is not None:
                    around.setdefault(line, set()).add(oblast.id)  # "Сміла Камʼянка": Smila settles Kamianka
                if self.gazetteer.place(place_id).kind == "oblast" and _opens_line(text, words[span.start].start):
                    heading = place_id  # not "10 повз Лозову на Дніпропетровщину": a destination heads nothing
            if place_id is None:
                continue
            start, end = words[span.start].start, words[span.end - 1].end
            target = _targeted(words, span)
            for named in sorted(span.group) if place_id in span.group else (place_id,):
                if named in seen:
                    continue
                seen.add(named)
                place = self.gazetteer.place(named)
                oblast = self.gazetteer.oblast_of(named)
                mentions.append(
                    Mention(
                        place,
                        start,
                        end,
                        _direction(words, span) or ("towards" if target else None),
                        _count(words, span.start),
                        target,
                        span.ambiguous,
                        self.gazetteer.place(place.parent).name if place.parent is not None else None,
                        oblast.name if oblast is not None else None,
                        self.gazetteer.lineage(named),
                    )
                )
        return mentions

    # --- names -------------------------------------------------------------------------------------

    def _spans(self, words: Sequence[Token]) -> list[_Span]:
        """Longest names first, left to right; a token belongs to one name at most."""
        spans: list[_Span] = []
        texts = [word.text for word in words]
        index = 0
        for named in self.gazetteer.naming(texts):
            if named < index:
                continue  # inside the name found last
            index = named
            if texts[index] in _SIDES and index and texts[index - 1] in _FROM_WORDS:
                continue  # "зі сходу" is a direction, not the village of Схід
            span = self._longest(words, index)
            if span is not None:
                spans.append(span)
                index = span.end
                region = self._and_region(words, span) if index + 1 < len(texts) and texts[index] in _AND else None
                if region is not None:
                    spans.append(region)
                    index = region.end
        return spans

    def _and_region(self, words: Sequence[Token], span: _Span) -> _Span | None:
        """ "Київ та область", "Белгород и область": the oblast of the regional centre named before."""
        after = span.end  # a word of _AND, and one more after it
        if _TYPE_FORMS.get(words[after + 1].text) != "oblast":
            return None
        regions = set()
        for place_id in span.candidates:
            place = self.gazetteer.place(place_id)
            oblast = self.gazetteer.oblast_of(place_id)
            if place.kind == "city" and place.weight >= 3 and oblast is not None:
                regions.add(self._region_around.get(place_id, oblast.id))
        if len(regions) != 1:
            return None
        return _Span(after + 1, after + 2, tuple(regions), False, frozenset(regions))

    def _longest(self, words: Sequence[Token], index: int) -> _Span | None:
        lookup = self.gazetteer.lookup
        heads = [entry for entry in lookup(words[index].text) if entry.word == 0]
        if not heads:
            return None
        following = words[index + 1].text if index + 1 < len(words) else ""
        if following in _AND or lookup(following):  # a list may follow; most names stand alone
            listed = self._listed(words, index, heads)
            if listed is not None:
                return listed
        by_length: dict[int, list[Entry]] = {}
        for entry in heads:
            by_length.setdefault(entry.words, []).append(entry)
        for length in sorted(by_length, reverse=True):
            if length > _MAX_WORDS:
                continue
            matched = by_length[length]
            position = index + 1
            for word in range(1, length):
                if position >= len(words):
                    matched = []
                    break
                here, position = _type_word(words, position)
                # Any name of the place will do: a Russian adjective before a noun whose Russian oblique
                # forms the dictionary lacks still meets its Ukrainian ones ("Лозовой Рудки").
                wanted = {e.place for e in lookup(here) if e.word == word and e.words == length}
                matched = [e for e in matched if e.place in wanted]
                if not matched:
                    break
            if matched:
                if length == 1 and len(words[index].text) < 3 and not self._abbreviation(matched):
                    continue  # "Ра", "Ли": one- and two-letter forms name too little, bar abbreviations ("БЦ")
                return _Span(
                    index,
                    position,
                    tuple(sorted({e.place for e in matched})),
                    all(e.ambiguous for e in matched),
                    frozenset(e.place for e in matched if e.name == 0),
                    base=any(e.base for e in matched),
                    group=frozenset(e.place for e in matched if e.group),
                    written=frozenset(e.place for e in matched if e.base),
                )
        return self._adjective(words, index, heads)

    def _misspelt(self, text: str, words: Sequence[Token], home: Sequence[int]) -> list[_Span]:
        """A post of one capitalized word that names no place, in a channel with a region: the one place
        of that region a typo away, if there is exactly one ("Мархаліака" for Мархалівка, "Куреніака"
        for Куренівка: monitors type fast during an attack)."""
        if len(words) != 1 or len(words[0].text) < 6 or not home or not text[words[0].start].isupper():
            return []
        homes = frozenset(home)
        places = {
            e.place
            for e in self.gazetteer.near(words[0].text)
            if e.word == 0 and e.words == 1 and not self.gazetteer.lineage(e.place).isdisjoint(homes)
        }
        if len(places) != 1:
            return []
        return [_Span(0, 1, tuple(places), True, frozenset(places))]

    def _listed(self, words: Sequence[Token], index: int, heads: Iterable[Entry]) -> _Span | None:
        """An oblast's or raion's adjective listed with others before one type word: "Броварський/
        Білоцерківський райони", "Лубенського та Миргородського районів", "Курской и Белгородской
        областей". Checked before a name of one word: "Кропивницький" is a city, but not here."""
        units = [e.place for e in heads if e.words == 2 and self._unit(e.place)]
        position, listed = index + 1, False
        while units and position < min(len(words), index + 7):
            word = words[position].text
            kind = _TYPE_FORMS.get(word)
            if kind is not None:
                chosen = tuple(sorted({p for p in units if self.gazetteer.place(p).kind == kind}))
                return _Span(index, index + 1, chosen, False, frozenset(chosen)) if listed and chosen else None
            if word not in _AND:
                if not any(e.word == 0 and e.words == 2 and self._unit(e.place) for e in self.gazetteer.lookup(word)):
                    return None
                listed = True
            position += 1
        return None

    def _unit(self, place_id: int) -> bool:
        return self.gazetteer.place(place_id).kind in ("oblast", "raion")

    def _abbreviation(self, entries: Iterable[Entry]) -> bool:
        return any(self.gazetteer.place(e.place).names[e.name].isupper() for e in entries)

    def _adjective(self, words: Sequence[Token], index: int, heads: Iterable[Entry]) -> _Span | None:
        """An oblast or raion by its adjective with a type word in another number ("Курской и Белгородской
        областей", "в Сумській та Харківській областях"), or an oblast by its adjective alone ("в
        черкаську"): the latter is shorthand, kept only in context."""
        units = {
            e.place
            for e in heads
            if e.words == 2 and e.name == 0 and self.gazetteer.place(e.place).kind in ("oblast", "raion")
        }
        if not units:
            return None
        typed = index + 1 < len(words) and words[index + 1].text in _TYPE_FORMS
        if typed:
            return _Span(index, index + 2, tuple(sorted(units)), False, frozenset(units))
        oblasts = tuple(sorted(p for p in units if self.gazetteer.place(p).kind == "oblast"))
        if not oblasts:
            return None
        return _Span(index, index + 1, oblasts, True, frozenset(oblasts), shorthand=True)

    # --- context -----------------------------------------------------------------------------------

    @staticmethod
    def _bare(words: Sequence[Token], spans: Sequence[_Span]) -> bool:
        """Is the post nothing but place names (and directions, counts, a few filler words)?"""
        covered = {i for span in spans for i in range(span.start, span.end)}
        others = [w.text for i, w in enumerate(words) if i not in covered]
        return len(others) <= 2 and all(word in _FILLER or _COUNT.match(word) for word in others)

    def _in_context(
        self,
        text: str,
        words: Sequence[Token],
        span: _Span,
        bare: bool,
        alarm: bool,
        after_place: bool = False,
        listing: bool = False,
    ) -> bool:
        """May an ambiguous name ("Мирне", "Українка", "черкаську") be read as a place here?

        Yes in a post of nothing but names, beside a direction or a count, after a preposition of
        place when capitalized (lower case too for a target, or an oblast's adjective), and when
        capitalized where no sentence begins; in a post about a threat (`alarm`), a capital letter
        is enough, and a city the news names may open a sentence ("Черкаси терміново в укриття").
        """
        capital = text[words[span.start].start].isupper()
        if bare and (capital or listing):
            return True  # "ОБУХІВ!!!", "таценки", "Мрія лісне": a post that is nothing but names
        if _direction(words, span) or _count(words, span.start) is not None:
            return True
        before = words[span.start - 1].text if span.start > 0 else None
        if span.shorthand and after_place:
            return True  # "від лисянки черкаська": the oblast of the place before it
        if before in _PLACE_PREPOSITIONS:
            return capital or span.shorthand or before in _TARGET_WORDS
        if span.shorthand:
            return False
        if not capital:
            return False
        if not _sentence_start(text, words[span.start].start):
            return span.end - span.start == 1 or alarm
        # Opening a sentence, a capital says nothing: in a post about a threat, a name followed by a
        # warning, a weapon, a direction or nothing is a place ("Українка БПЛА з річки", "Калита увага!");
        # "Мирне небо над Києвом" is a wish.
        if not alarm or span.end >= len(words) or len(words) <= 3 or self._known_city(span):
            return alarm  # a post of three words about a threat is shorthand: "Кожанка пройде"
        following = words[span.end]
        gap = text[words[span.end - 1].end : following.start]
        return (
            not gap.isspace()  # "Бровари, Рожівка", "Обухів - увага"
            or following.text in _AFTER_A_PLACE
            or following.text in _PLACE_PREPOSITIONS
            or following.text[:1].isdigit()  # "Черкаси 1х БпЛА повз місто"
            or text[following.start].isupper()
            or following.text in self.gazetteer  # "Хотів чабани увага": a list of places
        )

    def _known_city(self, span: _Span) -> bool:
        """Is one of the places a city the news names (an oblast centre, "Сміла", "Лебедин")?"""
        return any(
            self.gazetteer.place(p).kind == "city" and self.gazetteer.place(p).weight >= 2 for p in span.candidates
        )

    def _sure(self, span: _Span) -> int | None:
        """The place a name means whatever the post: its only one, or the oblast of an oblast's informal
        name no city bears ("Харківщина", though a village in Sumy oblast has that name)."""
        if span.ambiguous:
            return None
        if len(span.candidates) == 1:
            return span.candidates[0]
        oblast = None
        for place_id in span.candidates:
            kind = self.gazetteer.place(place_id).kind
            if kind == "city" or (kind == "oblast" and oblast is not None):
                return None
            if kind == "oblast":
                oblast = place_id
        return oblast

    def _scope(self, sures: Sequence[int | None]) -> set[int]:
        """Places named without doubt, and their oblasts: they settle the others ("Сміла, Камʼянка" is the
        Kamianka of Cherkasy oblast, where Smila is)."""
        sure = {place_id for place_id in sures if place_id is not None}
        oblasts = {oblast.id for place_id in sure if (oblast := self.gazetteer.oblast_of(place_id)) is not None}
        return sure | oblasts

    def _line_oblasts(
        self, text: str, words: Sequence[Token], spans: Sequence[_Span], sures: Sequence[int | None]
    ) -> tuple[list[int], dict[int, set[int]]]:
        """Each name's line, and the oblasts of the places on each line named without doubt."""
        lines = [text.count("\n", 0, words[span.start].start) for span in spans]
        around: dict[int, set[int]] = {}
        for line, sure in zip(lines, sures, strict=True):
            if sure is not None:
                oblast = self.gazetteer.oblast_of(sure)
                if oblast is not None:
                    around.setdefault(line, set()).add(oblast.id)
        return lines, around

    def _choose(
        self, span: _Span, sure: int | None, scope: set[int], home: Sequence[int], local: set[int]
    ) -> int | None:
        """The place a name means here (`sure`: what `_sure` says of it); None for a village name that fits
        nowhere the post is about."""
        if sure is not None:
            return sure
        lineage = self.gazetteer.lineage
        homes = frozenset(home)
        city_own = any(
            place_id in span.own_name and self.gazetteer.place(place_id).kind == "city" for place_id in span.candidates
        )
        chosen = max(span.candidates, key=lambda place_id: self._score(span, place_id, scope, homes, local, city_own))
        if (
            self.gazetteer.place(chosen).kind == "village"
            and scope
            and lineage(chosen).isdisjoint(scope | homes)
            and (span.ambiguous or len({self.gazetteer.oblast_of(place_id) for place_id in span.candidates}) > 1)
        ):
            # "Лозовой Рудки" in a post about Belgorod is not a Lviv-oblast village; "з лісу" in a post about
            # Irpin is no village Ліс. Namesakes all in one oblast leave no doubt of it (two Голованівськ).
            return None
        return chosen

    def _score(
        self, span: _Span, place_id: int, scope: set[int], homes: frozenset[int], local: set[int], city_own: bool
    ) -> tuple[int, ...]:
        """An oblast's informal name ("Харківщина") means the oblast, not a village of that name, unless a
        city bears it; then: in the oblast of the line or heading; named beside a place it is in; in the
        channel's region; the name is its own; the bigger unit; the better known; the name written as
        it is named ("Вишеньки" the village of that name, not the genitive of Вишенька)."""
        lineage = self.gazetteer.lineage(place_id)
        place = self.gazetteer.place(place_id)
        kind = place.kind
        own = place_id in span.own_name
        return (
            int(kind == "oblast" and not city_own),
            int(not lineage.isdisjoint(local - {place_id})),
            int(not lineage.isdisjoint(scope - {place_id})),
            int(not lineage.isdisjoint(homes)),
            int(own and kind != "village"),  # "Запоріжжя" the city, not the oblast it also names
            _KIND_WEIGHT.get(kind, 0),
            place.weight,  # "Миколаїв" the oblast centre, not the Lviv-oblast town
            int(place_id in span.written),
            int(own),
            -place_id,
        )


_KIND_WEIGHT = {"country": 6, "oblast": 5, "city": 4, "raion": 3, "district": 2, "village": 1}


def _type_word(words: Sequence[Token], position: int) -> tuple[str, int]:
    """The word at `position` with abbreviated type words spelled out; and the position after it."""
    word = words[position].text
    if word == "р" and position + 1 < len(words) and words[position + 1].text in ("н", "ну", "ні", "на"):
        return "район", position + 2
    return _TYPE_ABBREVIATIONS.get(word, word), position + 1


def _words(text: str) -> list[Token]:
    """The text's words with offsets, as `tokenize` gives them; for most texts (whose folding keeps every
    character in place) by one regex pass over the folded text instead of a normalization per word."""
    folded, aligned = fold_text(text)
    if not aligned:
        return tokenize(text)
    folded = blank_links(fold_mixed_words(folded))
    return [Token(m.start(), m.end(), m.group()) for m in FOLDED_WORD_RE.finditer(folded)]


def _targeted(words: Sequence[Token], span: _Span) -> bool:
    """Named as where something heads: "курсом на Бровари", "на Київ", "до Києва", "в Київ"; not "на
    Броварах", "в Києві" (the locative, where something is)."""
    if span.start == 0:
        return False
    before = words[span.start - 1].text
    if before in _HEADING_WORDS:
        return True
    if before not in _MOTION_PREPOSITIONS:
        return False
    return span.base or not any(w.text.endswith(_LOCATIVE_ENDINGS) for w in words[span.start : span.end])


def _direction(words: Sequence[Token], span: _Span) -> str | None:
    """ "з заходу", "зі сходу", "з північного заходу", "с юго-запада" after the name; "північніше" before it."""
    if span.start > 0 and words[span.start - 1].text in _RELATIVE:
        return _RELATIVE[words[span.start - 1].text]
    after = span.end
    if after + 1 < len(words) and words[after].text in _FROM_WORDS and words[after + 1].text in _SIDES:
        side = _SIDES[words[after + 1].text]
        if (
            after + 2 < len(words)
            and words[after + 2].text in _SECOND_SIDES
            and words[after + 1].text not in (_SECOND_SIDES)
        ):
            side = f"{side}-{_SECOND_SIDES[words[after + 2].text]}"
        return f"from {side}"
    return None


def _count(words: Sequence[Token], start: int) -> int | None:
    """The number before a target: "2 на Київ", "5 шахедів на Обухів", "2х групи крилатих ракет курсом на Смілу"."""
    position = start - 1
    if position < 0 or words[position].text not in _TARGET_WORDS:
        return None
    while position >= 0 and words[position].text in _TARGET_WORDS:
        position -= 1
    for back in range(position, max(position - 4, -1), -1):
        found = _COUNT.match(words[back].text)
        if found:
            return int(found.group(1))
    return None


def _opens_line(text: str, offset: int) -> bool:
    """Is there nothing but spaces, emoji and bullets before `offset` on its line?"""
    return not any(c.isalnum() for c in text[text.rfind("\n", 0, offset) + 1 : offset])


def _sentence_start(text: str, offset: int) -> bool:
    """Does a sentence (or the text, or a line) begin at `offset`, bar spaces, emoji and bullets?"""
    index = offset - 1
    while index >= 0 and not (text[index].isalnum() or text[index] in _SENTENCE_END):
        index -= 1
    return index < 0 or text[index] in _SENTENCE_END
