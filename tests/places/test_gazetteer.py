"""The shipped gazetteer: names in every form and language, the hierarchy, ambiguity flags, config lookup."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from bot.places import Gazetteer, Place, load_gazetteer
from bot.places.gazetteer import KINDS
from bot.rules.normalize import normalize_word, tokenize


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return load_gazetteer()


def named(gaz: Gazetteer, text: str) -> set[int]:
    """Places one of whose names, in some form, is the whole text: its words looked up one by one as a
    matcher walking a post's tokens would, each at its position in the same name."""
    words = [token.text for token in tokenize(text)]
    found: set[tuple[int, int]] | None = None
    for position, word in enumerate(words):
        here = {(e.place, e.name) for e in gaz.lookup(word) if e.word == position and e.words == len(words)}
        found = here if found is None else found & here
    return {place for place, _ in found or ()}


def the(gaz: Gazetteer, name: str, kind: str, region: str) -> Place:
    """The one place of a displayed name and kind in an oblast, Russian region or special-status city."""
    found = [
        place
        for place in gaz.find(name)
        if place.name == name and place.kind == kind and (gaz.oblast_of(place.id) or place).code == region
    ]
    assert len(found) == 1, (name, kind, region, found)
    return found[0]


def entries(gaz: Gazetteer, form: str, place: Place) -> list[bool]:
    """The ambiguous flags of a one-word form's entries for a place."""
    return [e.ambiguous for e in gaz.lookup(normalize_word(form)) if e.place == place.id]


@pytest.mark.parametrize(
    ("text", "name", "kind", "region"),
    [
        ("Київ", "Київ", "city", "UA-30"),
        ("Києва", "Київ", "city", "UA-30"),
        ("Києві", "Київ", "city", "UA-30"),
        ("Києвом", "Київ", "city", "UA-30"),
        ("Киев", "Київ", "city", "UA-30"),
        ("Киева", "Київ", "city", "UA-30"),
        ("Киеве", "Київ", "city", "UA-30"),
        ("Kyiv", "Київ", "city", "UA-30"),
        ("Бровари", "Бровари", "city", "UA-32"),
        ("Броварах", "Бровари", "city", "UA-32"),
        ("Броварів", "Бровари", "city", "UA-32"),
        ("Бровары", "Бровари", "city", "UA-32"),
        ("Маньківці", "Маньківка", "village", "UA-71"),
        ("Біла Церква", "Біла Церква", "city", "UA-32"),
        ("Білої Церкви", "Біла Церква", "city", "UA-32"),
        ("Білій Церкві", "Біла Церква", "city", "UA-32"),
        ("Белой Церкви", "Біла Церква", "city", "UA-32"),
        ("Кривого Рогу", "Кривий Ріг", "city", "UA-12"),
        ("Кривом Роге", "Кривий Ріг", "city", "UA-12"),
        ("Київська область", "Київська область", "oblast", "UA-32"),
        ("Київської області", "Київська область", "oblast", "UA-32"),
        ("Киевской области", "Київська область", "oblast", "UA-32"),
        ("Київщина", "Київська область", "oblast", "UA-32"),
        ("Київщині", "Київська область", "oblast", "UA-32"),
        ("Киевщина", "Київська область", "oblast", "UA-32"),
        ("Kyiv Oblast", "Київська область", "oblast", "UA-32"),
        ("Обухівський район", "Обухівський район", "raion", "UA-32"),
        ("Обухівському районі", "Обухівський район", "raion", "UA-32"),
        ("Обуховского района", "Обухівський район", "raion", "UA-32"),
        ("Нової Каховки", "Нова Каховка", "city", "UA-65"),
        ("Kharkiv", "Харків", "city", "UA-63"),
        ("Харькове", "Харків", "city", "UA-63"),
        ("Шулявці", "Шулявка", "district", "UA-30"),
        ("Белгород", "Белгород", "city", "RU-BEL"),
        ("Белгороде", "Белгород", "city", "RU-BEL"),
        ("Бєлгороді", "Белгород", "city", "RU-BEL"),
        ("Belgorod", "Белгород", "city", "RU-BEL"),
        ("Шебекино", "Шебекино", "city", "RU-BEL"),
        ("Шебекине", "Шебекино", "city", "RU-BEL"),
        ("Белгородчина", "Белгородская область", "oblast", "RU-BEL"),
        ("Курская область", "Курская область", "oblast", "RU-KRS"),
        ("Курской области", "Курская область", "oblast", "RU-KRS"),
        ("Тёткино", "Тёткино", "village", "RU-KRS"),
        ("Теткино", "Тёткино", "village", "RU-KRS"),
        ("Суджи", "Суджа", "city", "RU-KRS"),
        ("Ростова-на-Дону", "Ростов-на-Дону", "city", "RU-ROS"),
    ],
)
def test_every_form_and_language_names_its_place(gaz: Gazetteer, text: str, name: str, kind: str, region: str) -> None:
    assert the(gaz, name, kind, region).id in named(gaz, text)


def test_lookup_takes_tokens_folded_as_posts_are(gaz: Gazetteer) -> None:
    assert gaz.lookup(normalize_word("Тёткино")) == gaz.lookup("теткино") != ()
    assert gaz.lookup(normalize_word("Лук’янівці")) == gaz.lookup(normalize_word("Лук'янівці")) != ()
    assert normalize_word("Києві") in gaz
    assert "тревога" not in gaz
    assert gaz.lookup("тревога") == ()


def test_near_finds_the_forms_one_typo_away(gaz: Gazetteer) -> None:
    names = {gaz.place(e.place).name for e in gaz.near("мархаліака")}  # в → а
    assert "Мархалівка" in names
    assert {gaz.place(e.place).name for e in gaz.near("мархалвка")} >= {"Мархалівка"}  # a letter missing
    assert {gaz.place(e.place).name for e in gaz.near("марахлівка")} >= {"Мархалівка"}  # two swapped
    assert gaz.near("тривога") == []  # nothing a typo from a common word


def test_base_marks_the_name_as_written(gaz: Gazetteer) -> None:
    kyiv = the(gaz, "Київ", "city", "UA-30")
    assert [e.base for e in gaz.lookup("київ") if e.place == kyiv.id] == [True]
    assert [e.base for e in gaz.lookup("києві") if e.place == kyiv.id] == [False]


def test_multi_word_names_give_every_word_its_position(gaz: Gazetteer) -> None:
    city = the(gaz, "Біла Церква", "city", "UA-32")
    first = [e for e in gaz.lookup("білої") if e.place == city.id]
    second = [e for e in gaz.lookup("церкви") if e.place == city.id]
    assert {(e.word, e.words) for e in first} == {(0, 2), (0, 1)}  # and the monitors' short "Біла"
    assert {(e.word, e.words) for e in second} == {(1, 2)}
    assert {city.names[e.name] for e in first} == {"Біла Церква", "Біла"}
    assert "Белая Церковь" in {city.names[e.name] for e in second}


def test_kyiv_neighbourhood_is_a_district_within_the_city(gaz: Gazetteer) -> None:
    kyiv = the(gaz, "Київ", "city", "UA-30")
    shuliavka = gaz.find("Шулявка")[0]
    assert (shuliavka.kind, shuliavka.country, shuliavka.parent) == ("district", "UA", kyiv.id)
    assert "Shuliavka" in shuliavka.names
    assert gaz.within(shuliavka.id, kyiv.id)
    assert gaz.oblast_of(shuliavka.id) == kyiv
    assert [p.name for p in gaz.ancestors(shuliavka.id)] == ["Київ", "Україна"]
    kyiv_oblast = the(gaz, "Київська область", "oblast", "UA-32")
    assert not gaz.within(shuliavka.id, kyiv_oblast.id)  # Kyiv has special status: in no oblast


def test_a_village_knows_its_raion_oblast_and_country(gaz: Gazetteer) -> None:
    village = the(gaz, "Трипілля", "village", "UA-32")
    raion = the(gaz, "Обухівський район", "raion", "UA-32")
    oblast = the(gaz, "Київська область", "oblast", "UA-32")
    assert (village.code or "").startswith("UA32")
    assert [p.id for p in gaz.ancestors(village.id)] == [raion.id, oblast.id, oblast.parent]
    assert gaz.oblast_of(village.id) == oblast
    assert gaz.oblast_of(oblast.id) == oblast
    assert gaz.within(village.id, raion.id)
    assert gaz.within(village.id, oblast.id)
    assert gaz.within(village.id, village.id)
    assert not gaz.within(village.id, the(gaz, "Харківська область", "oblast", "UA-63").id)
    assert not gaz.within(raion.id, village.id)


def test_russian_places_have_their_hierarchy(gaz: Gazetteer) -> None:
    region = gaz.find("Курская область")[0]
    tetkino = the(gaz, "Тёткино", "village", "RU-KRS")
    assert (region.kind, region.country, region.code) == ("oblast", "RU", "RU-KRS")
    assert gaz.place(region.parent or 0).names[:2] == ("Росія", "Россия")
    assert [p.kind for p in gaz.ancestors(tetkino.id)] == ["raion", "oblast", "country"]
    assert gaz.oblast_of(tetkino.id) == region
    assert {"Tyotkino", "Тьоткіно"} <= set(tetkino.names)
    moscow = gaz.find("Moscow")[0]
    assert (moscow.kind, moscow.code, gaz.oblast_of(moscow.id)) == ("city", "RU-MOW", moscow)


@pytest.mark.parametrize(
    ("form", "name", "kind", "region", "ambiguous"),
    [
        ("Мирне", "Мирне", "village", "UA-23", True),  # peaceful
        ("Мирного", "Мирне", "village", "UA-23", True),
        ("Українка", "Українка", "city", "UA-32", True),  # a Ukrainian woman
        ("Сміла", "Сміла", "city", "UA-71", True),  # brave
        ("Поділ", "Поділ", "district", "UA-30", True),  # a division
        ("Обухів", "Обухів", "city", "UA-32", False),
        ("Обухові", "Обухів", "city", "UA-32", False),
        ("Києві", "Київ", "city", "UA-30", False),
        ("Миколаїв", "Миколаїв", "city", "UA-48", False),
        ("Маньківка", "Маньківка", "village", "UA-71", False),
        ("Шулявка", "Шулявка", "district", "UA-30", False),
        ("Белгороде", "Белгород", "city", "RU-BEL", False),
        ("Короче", "Короча", "city", "RU-BEL", True),  # shorter
        ("Короча", "Короча", "city", "RU-BEL", False),
        ("Київщині", "Київська область", "oblast", "UA-32", False),
    ],
)
def test_ambiguous_flags_common_words(
    gaz: Gazetteer, form: str, name: str, kind: str, region: str, ambiguous: bool
) -> None:
    candidates = [p for p in gaz.find(name) if p.kind == kind and (gaz.oblast_of(p.id) or p).code == region]
    assert candidates
    for place in candidates:
        assert set(entries(gaz, form, place)) == {ambiguous}, place


def test_a_multi_word_name_is_ambiguous_only_when_each_word_is(gaz: Gazetteer) -> None:
    oblast = the(gaz, "Київська область", "oblast", "UA-32")
    assert {e.ambiguous for e in gaz.lookup("київської") if e.place == oblast.id} == {False}
    assert {e.ambiguous for e in gaz.lookup("області") if e.place == oblast.id} == {False}
    city = the(gaz, "Біла Церква", "city", "UA-32")  # "біла церква": a white church
    assert {e.ambiguous for e in gaz.lookup("церкві") if e.place == city.id} == {True}


def test_short_forms_are_ambiguous_but_listed_exceptions_are_not(gaz: Gazetteer) -> None:
    russia = gaz.find("Россия")[0]
    assert russia.kind == "country"
    assert entries(gaz, "РФ", russia) == [False]
    ukraine = gaz.find("Україна")[0]
    assert set(entries(gaz, "України", ukraine)) == {False}


def test_duplicate_village_names_resolve_to_every_place(gaz: Gazetteer) -> None:
    myrne = [gaz.place(place_id) for place_id in named(gaz, "Мирне")]
    assert len(myrne) > 20
    assert {p.kind for p in myrne} == {"village"}
    assert len({gaz.oblast_of(p.id) for p in myrne}) > 5
    in_zaporizhzhia = gaz.find("Мирне, Запорізька область")
    assert in_zaporizhzhia
    assert len(in_zaporizhzhia) < len(myrne)
    assert all(gaz.oblast_of(p.id) == gaz.find("UA-23")[0] for p in in_zaporizhzhia)


@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [
        ("Київська область", "oblast", "UA-32"),
        ("Київська обл.", "oblast", "UA-32"),
        ("Киевская область", "oblast", "UA-32"),
        ("Київщина", "oblast", "UA-32"),
        ("Kyiv", "city", "UA-30"),
        ("Київ", "city", "UA-30"),
        ("м. Київ", "city", "UA-30"),
        ("UA-32", "oblast", "UA-32"),
        ("Белгородская область", "oblast", "RU-BEL"),
        ("Белгородская обл.", "oblast", "RU-BEL"),
        ("RU-BEL", "oblast", "RU-BEL"),
        ("Крим", "oblast", "UA-43"),
        ("Україна", "country", "UA"),
        ("рф", "country", "RU"),
    ],
)
def test_find_config_names(gaz: Gazetteer, name: str, kind: str, code: str) -> None:
    found = gaz.find(name)
    assert (found[0].kind, found[0].code) == (kind, code)


def test_find_ranks_the_likely_place_first(gaz: Gazetteer) -> None:
    mykolaiv = gaz.find("Миколаїв")
    assert gaz.oblast_of(mykolaiv[0].id) == gaz.find("UA-48")[0]  # the oblast centre, not Lviv oblast's town
    assert len(mykolaiv) > 1
    raion = gaz.find("Обухівський р-н")
    assert (raion[0].kind, raion[0].name) == ("raion", "Обухівський район")
    assert gaz.find("@Шулявка")[0].kind == "district"
    brovary = gaz.find("м. Бровари")[0]
    assert (brovary.kind, gaz.find(brovary.code or "")[0]) == ("city", brovary)
    assert gaz.find("Атлантида") == []
    assert gaz.find("") == []


def test_counts_are_sane(gaz: Gazetteer) -> None:
    places = list(gaz)
    ukraine, russia = places[0], places[1]
    assert (ukraine.code, russia.code) == ("UA", "RU")
    by_country = Counter(p.country for p in places)
    assert by_country["UA"] >= 25_000
    assert by_country["RU"] >= 60
    top = [p for p in places if p.parent == ukraine.id]
    assert len(top) == 27  # 24 oblasts, Crimea, Kyiv, Sevastopol
    assert Counter(p.kind for p in top) == {"oblast": 25, "city": 2}
    assert {p.code for p in top} >= {"UA-30", "UA-32", "UA-40", "UA-43", "UA-09", "UA-77"}
    kinds = Counter((p.country, p.kind) for p in places)
    assert kinds["UA", "raion"] == 136
    assert kinds["UA", "city"] > 450
    assert kinds["UA", "district"] > 140
    assert kinds["RU", "oblast"] >= 7
    assert {p.kind for p in places} == set(KINDS)


def test_every_parent_chain_ends_at_a_country_and_every_name_is_indexed(gaz: Gazetteer) -> None:
    for place in gaz:
        chain = gaz.ancestors(place.id)
        assert len(chain) <= 5
        assert (chain[-1] if chain else place).kind == "country"
        assert place.names[0] == place.name
        assert len(set(place.names)) == len(place.names)
        if place.id % 5 == 0:  # a fifth of the names, to keep the test quick
            for index, name in enumerate(place.names):
                words = [token.text for token in tokenize(name)]
                for position, word in enumerate(words):
                    assert any(
                        e.place == place.id and e.name == index and e.word == position and e.base
                        for e in gaz.lookup(word)
                    ), (place, name, word)


def test_unknown_place_ids_raise(gaz: Gazetteer) -> None:
    with pytest.raises(IndexError):
        gaz.place(len(gaz))
    with pytest.raises(IndexError):
        gaz.place(-1)


def test_loads_within_budget() -> None:
    """≤ 0.5 s and ≤ 60 MB RSS added to a process that already has the rule engine's imports."""
    script = """
import json, time
import bot.rules.normalize
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024
before, start = rss(), time.perf_counter()
from bot.places import load_gazetteer
g = load_gazetteer()
g.find("Київська область"); g.lookup("києві")
print(json.dumps({"seconds": time.perf_counter() - start, "mb": rss() - before}))
"""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout)
    assert figures["seconds"] < 0.5, figures
    assert figures["mb"] < 60, figures
