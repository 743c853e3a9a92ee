"""PlaceFinder on the monitoring channels' shorthand: which place, where in the text, what is said of it.

A wrong place routes an alert to the wrong analyst; a common word read as a village raises a false alert.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.places import Gazetteer, load_gazetteer
from bot.places.finder import Mention, PlaceFinder

# What a test says of a mention: the text it covers, the place's displayed name, kind and oblast, and the
# direction, count and target written beside it.
Row = tuple[str, str, str, str | None, str | None, int | None, bool]


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return load_gazetteer()


@pytest.fixture(scope="module")
def finder(gaz: Gazetteer) -> PlaceFinder:
    return PlaceFinder(gaz)


def rows(text: str, mentions: Sequence[Mention]) -> list[Row]:
    return [
        (text[m.start : m.end], m.place.name, m.place.kind, m.oblast, m.direction, m.count, m.target) for m in mentions
    ]


def where(mentions: Sequence[Mention]) -> list[tuple[str, str | None]]:
    """Each mention's place and its oblast."""
    return [(m.place.name, m.oblast) for m in mentions]


KYIV_OBLAST = "Київська область"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ОБУХІВ!!!!", [("ОБУХІВ", "Обухів", "city", KYIV_OBLAST, None, None, False)]),
        ("2 на Київ", [("Київ", "Київ", "city", "Київ", "towards", 2, True)]),
        ("Трипілля зі заходу", [("Трипілля", "Трипілля", "village", KYIV_OBLAST, "from west", None, False)]),
        ("Бровари з північного заходу", [("Бровари", "Бровари", "city", KYIV_OBLAST, "from north-west", None, False)]),
        ("мопед курсом на Бровари", [("Бровари", "Бровари", "city", KYIV_OBLAST, "towards", None, True)]),
        (
            "8 КР на Білоцерківський р-н",
            [("Білоцерківський р-н", "Білоцерківський район", "raion", KYIV_OBLAST, "towards", 8, True)],
        ),
        ("Київська обл.", [("Київська обл", KYIV_OBLAST, "oblast", KYIV_OBLAST, None, None, False)]),
        ("Броварський район", [("Броварський район", "Броварський район", "raion", KYIV_OBLAST, None, None, False)]),
        # The locative says where something is, not where it heads.
        ("на Броварах", [("Броварах", "Бровари", "city", KYIV_OBLAST, None, None, False)]),
        (
            "в Курской области",
            [("Курской области", "Курская область", "oblast", "Курская область", None, None, False)],
        ),
        (
            "Белгородской и Курской областей",
            [
                ("Белгородской", "Белгородская область", "oblast", "Белгородская область", None, None, False),
                ("Курской областей", "Курская область", "oblast", "Курская область", None, None, False),
            ],
        ),
        (
            "в черкаську на Звенигородку",
            [
                ("черкаську", "Черкаська область", "oblast", "Черкаська область", "towards", None, True),
                ("Звенигородку", "Звенигородка", "city", "Черкаська область", "towards", None, True),
            ],
        ),
        (
            "Миколаївщина: 2 над Миколаєвом. 1 північніше Рибаківки.",
            [
                ("Миколаївщина", "Миколаївська область", "oblast", "Миколаївська область", None, None, False),
                ("Миколаєвом", "Миколаїв", "city", "Миколаївська область", None, None, False),
                ("Рибаківки", "Рибаківка", "village", "Миколаївська область", "north of", None, False),
            ],
        ),
        (
            "Вибухи на Шулявці та Оболоні",
            [
                ("Шулявці", "Шулявка", "district", "Київ", None, None, False),
                ("Оболоні", "Оболонь", "district", "Київ", None, None, False),
            ],
        ),
        (
            "Kyiv and Kharkiv",
            [
                ("Kyiv", "Київ", "city", "Київ", None, None, False),
                ("Kharkiv", "Харків", "city", "Харківська область", None, None, False),
            ],
        ),
        ("Троя", [("Троя", "Троєщина", "district", "Київ", None, None, False)]),
        ("Шахед на Трою", [("Трою", "Троєщина", "district", "Київ", "towards", None, True)]),
        ("Кроп", [("Кроп", "Кропивницький", "city", "Кіровоградська область", None, None, False)]),
    ],
)
def test_monitor_shorthand(finder: PlaceFinder, text: str, expected: list[Row]) -> None:
    assert rows(text, finder.find(text)) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("БЦ", "БЦ"), ("Ракета на БЦ", "БЦ")],
)
def test_bc_is_bila_tserkva(finder: PlaceFinder, text: str, fragment: str) -> None:
    assert [(text[m.start : m.end], m.place.name, m.oblast) for m in finder.find(text)] == [
        (fragment, "Біла Церква", KYIV_OBLAST)
    ]


def test_as_json_carries_direction_and_count_only_when_written(finder: PlaceFinder) -> None:
    assert [m.as_json() for m in finder.find("2 на Київ")] == [
        {
            "name": "Київ",
            "kind": "city",
            "parent": "Україна",
            "oblast": "Київ",
            "country": "UA",
            "code": "UA-30",
            "start": 5,
            "end": 9,
            "direction": "towards",
            "count": 2,
        }
    ]
    assert [m.as_json() for m in finder.find("ОБУХІВ!!!!")] == [
        {
            "name": "Обухів",
            "kind": "city",
            "parent": "Обухівський район",
            "oblast": KYIV_OBLAST,
            "country": "UA",
            "code": "UA32120110010071582",
            "start": 0,
            "end": 6,
        }
    ]
    (kursk,) = finder.find("в Курской области")
    assert {k: kursk.as_json()[k] for k in ("kind", "parent", "country", "code")} == {
        "kind": "oblast",
        "parent": "Росія",
        "country": "RU",
        "code": "RU-KRS",
    }
    (shuliavka,) = finder.find("Шулявка")
    assert (shuliavka.as_json()["code"], shuliavka.as_json()["parent"]) == (None, "Київ")


# --- common words ----------------------------------------------------------------------------------


def test_a_common_word_opening_a_sentence_is_no_place(finder: PlaceFinder) -> None:
    assert where(finder.find("Мирне небо над Києвом")) == [("Київ", "Київ")]


def test_a_common_word_opening_a_sentence_is_no_place_in_an_alarm_either(finder: PlaceFinder) -> None:
    assert where(finder.find("Мирне небо над Києвом", alarm=True)) == [("Київ", "Київ")]


@pytest.mark.parametrize("alarm", [False, True])
def test_a_quoted_title_names_no_village(finder: PlaceFinder, alarm: bool) -> None:
    found = finder.find("Легион «Свобода России»", alarm=alarm)
    assert [(m.place.name, m.place.kind) for m in found] == [("Росія", "country")]


def test_a_capitalized_common_word_opening_a_post_is_a_place_only_in_an_alarm(finder: PlaceFinder) -> None:
    text = "Українка БПЛА з річки увага!"
    assert finder.find(text) == []
    assert rows(text, finder.find(text, alarm=True)) == [
        ("Українка", "Українка", "city", KYIV_OBLAST, None, None, False)
    ]


@pytest.mark.parametrize("text", ["Сьогодні мирне небо, все добре", "Там сміла людина", "Все спокійно, у нас мирне"])
@pytest.mark.parametrize("alarm", [False, True])
def test_a_lowercase_common_word_inside_a_sentence_is_no_place(finder: PlaceFinder, text: str, alarm: bool) -> None:
    assert finder.find(text, alarm=alarm) == []


def test_a_post_of_one_lowercase_name_is_that_place(finder: PlaceFinder) -> None:
    assert rows("таценки", finder.find("таценки")) == [
        ("таценки", "Таценки", "village", KYIV_OBLAST, None, None, False)
    ]


# --- namesakes -------------------------------------------------------------------------------------


def test_mykolaiv_is_the_oblast_centre(finder: PlaceFinder) -> None:
    (found,) = finder.find("Миколаїв")
    assert (found.place.kind, found.parent, found.oblast) == ("city", "Миколаївський район", "Миколаївська область")


def test_kharkivshchyna_is_the_oblast(finder: PlaceFinder) -> None:
    (found,) = finder.find("Харківщина")
    assert (found.place.name, found.place.kind, found.place.code) == ("Харківська область", "oblast", "UA-63")


@pytest.mark.parametrize(
    ("home_names", "oblast"),
    [(("Київська область", "Київ"), KYIV_OBLAST), (("Сумська область",), "Сумська область")],
)
def test_a_village_with_namesakes_is_the_one_in_the_channels_region(
    gaz: Gazetteer, finder: PlaceFinder, home_names: tuple[str, ...], oblast: str
) -> None:
    assert len({gaz.oblast_of(p.id) for p in gaz.find("Вишеньки")}) > 5  # namesakes in many oblasts
    home = [gaz.find(name)[0].id for name in home_names]
    assert where(finder.find("Вишеньки", home)) == [("Вишеньки", oblast)]


@pytest.mark.parametrize(
    ("heading", "oblast"),
    [("Харківщина", "Харківська область"), ("Дніпропетровщина", "Дніпропетровська область")],
)
def test_a_heading_line_puts_the_villages_below_it_in_its_oblast(
    finder: PlaceFinder, heading: str, oblast: str
) -> None:
    text = f"{heading}:\n2 шахеди на Близнюки"
    assert rows(text, finder.find(text)) == [
        (heading, oblast, "oblast", oblast, None, None, False),
        ("Близнюки", "Близнюки", "village", oblast, "towards", 2, True),
    ]


@pytest.mark.parametrize(
    ("city", "oblast"),
    [("Сміла", "Черкаська область"), ("Запоріжжя", "Запорізька область")],
)
def test_a_place_named_without_doubt_settles_its_neighbour(finder: PlaceFinder, city: str, oblast: str) -> None:
    assert where(finder.find(f"Ракети район {city} Камʼянка")) == [(city, oblast), ("Кам'янка", oblast)]


def test_from_the_east_is_a_direction_not_the_village_skhid(finder: PlaceFinder) -> None:
    assert where(finder.find("Вибухи у Схід")) == [("Схід", "Кіровоградська область")]  # the village exists
    assert finder.find("Шахед зі сходу") == []
    assert rows("Обухів зі сходу", finder.find("Обухів зі сходу")) == [
        ("Обухів", "Обухів", "city", KYIV_OBLAST, "from east", None, False)
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Броварський/Білоцерківський райони",
            [("Броварський район", KYIV_OBLAST), ("Білоцерківський район", KYIV_OBLAST)],
        ),
        # "Кропивницький" alone is the city; listed before "райони", the raion.
        (
            "Кропивницький/Новоукраїнський райони",
            [("Кропивницький район", "Кіровоградська область"), ("Новоукраїнський район", "Кіровоградська область")],
        ),
        (
            "межа Черкаського-Звенигородського районів",
            [("Черкаський район", "Черкаська область"), ("Звенигородський район", "Черкаська область")],
        ),
        (
            "у Обухівському та Броварському районах",
            [("Обухівський район", KYIV_OBLAST), ("Броварський район", KYIV_OBLAST)],
        ),
        (
            "Белгородской и Курской областей",
            [("Белгородская область", "Белгородская область"), ("Курская область", "Курская область")],
        ),
    ],
)
def test_adjectives_listed_before_one_type_word_are_each_a_unit(
    finder: PlaceFinder, text: str, expected: list[tuple[str, str]]
) -> None:
    assert where(finder.find(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Увага Київ та область до відбою", [("Київ", "Київ"), (KYIV_OBLAST, KYIV_OBLAST)]),
        (
            "Белгород и область под обстрелом",
            [("Белгород", "Белгородская область"), ("Белгородская область", "Белгородская область")],
        ),
        ("Умань та область", [("Умань", "Черкаська область")]),  # not an oblast centre: which "область"?
    ],
)
def test_a_regional_centre_and_its_oblast(finder: PlaceFinder, text: str, expected: list[tuple[str, str]]) -> None:
    assert where(finder.find(text)) == expected


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Мрія лісне", ["Мрія", "Лісне"]),
        ("Хотів чабани увага", ["Хотів", "Чабани"]),
        ("Трипілля українка три", ["Трипілля", "Українка"]),
        ("Ще Рогозів та старе", ["Рогозів", "Старе"]),
    ],
)
def test_a_post_listing_names_takes_the_lowercase_ones_too(finder: PlaceFinder, text: str, names: list[str]) -> None:
    kyiv = [p.id for p in load_gazetteer().find(KYIV_OBLAST)]
    assert where(finder.find(text, kyiv)) == [(name, KYIV_OBLAST) for name in names]


def test_a_listing_of_common_words_alone_names_no_place(finder: PlaceFinder) -> None:
    assert finder.find("мирне лісне") == []


def test_a_city_the_news_names_opens_an_alarm(finder: PlaceFinder) -> None:
    assert finder.find("Черкаси терміново в укриття.") == []
    assert where(finder.find("Черкаси терміново в укриття.", alarm=True)) == [("Черкаси", "Черкаська область")]
    assert finder.find("Мирне небо над нами", alarm=True) == []  # a village nobody names: still a wish


def test_a_village_whose_namesakes_share_an_oblast_keeps_it(finder: PlaceFinder) -> None:
    """Two Голованівськ, both in Kirovohrad oblast: the oblast is sure, though Умань is in another."""
    assert where(finder.find("Голованівськ - Гайворон - Умань")) == [
        ("Голованівськ", "Кіровоградська область"),
        ("Гайворон", "Кіровоградська область"),
        ("Умань", "Черкаська область"),
    ]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Вільшанки", ["Велика Вільшанка", "Мала Вільшанка"]),
        ("Ірпінь, Борщагівки - Шахед", ["Ірпінь", "Петропавлівська Борщагівка", "Софіївська Борщагівка"]),
        ("Шахед біля Борщагівок", ["Петропавлівська Борщагівка", "Софіївська Борщагівка"]),
        ("На дмитровичі", ["Великі Дмитровичі", "Малі Дмитровичі"]),
        ("Мала Вільшанка", ["Мала Вільшанка"]),  # a member by its own name is itself alone
    ],
)
def test_a_name_of_several_places_names_them_all(finder: PlaceFinder, text: str, names: list[str]) -> None:
    kyiv = [p.id for p in load_gazetteer().find(KYIV_OBLAST)]
    assert where(finder.find(text, kyiv)) == [(name, KYIV_OBLAST) for name in names]


def test_a_common_word_far_from_the_post_is_no_village(finder: PlaceFinder) -> None:
    """ "з лісу з заходу": a direction beside it, but the only Ліс is in Lviv oblast and the post is
    about Irpin."""
    assert where(finder.find("Ірпінь з лісу з заходу БПЛА!")) == [("Ірпінь", KYIV_OBLAST)]


def test_a_name_as_written_beats_another_name_inflected(finder: PlaceFinder) -> None:
    """ "Вишеньки" is a village's name and the genitive of Вишенька's: with nothing else to go by, the former."""
    assert [m.place.name for m in finder.find("Далі на Вишеньки")] == ["Вишеньки"]


def test_an_oblast_named_as_a_destination_heads_no_lines(finder: PlaceFinder) -> None:
    """ "на Дніпропетровщину" mid-line is where drones go; the line's own oblast (Харківщина, whose
    informal name a Sumy village shares) keeps its city Златопіль."""
    text = "Харківщина: 10 повз Лозову на Дніпропетровщину (Юріївка), 1 кружляє біля Златополя"
    assert where(finder.find(text))[-1] == ("Златопіль", "Харківська область")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Мархаліака", "Мархалівка"),  # в → а: neighbours on the Ukrainian keyboard
        ("Куреніака 🤯", "Куренівка"),
        ("Ромлавичі", "Рославичі"),
        ("Телешківка ❗️", "Телешівка"),  # a letter too many
    ],
)
def test_a_lone_typo_in_an_alarm_is_the_one_place_of_the_region_it_nearly_names(
    gaz: Gazetteer, finder: PlaceFinder, text: str, name: str
) -> None:
    kyiv = [gaz.find(KYIV_OBLAST)[0].id, gaz.find("Київ")[0].id]
    assert [m.place.name for m in finder.find(text, kyiv, alarm=True)] == [name]
    assert finder.find(text, kyiv) == []  # no threat open: no guessing
    assert finder.find(text, alarm=True) == []  # no region: 30,000 places are too many to guess among
    assert finder.find(text.lower(), kyiv, alarm=True) == []


@pytest.mark.parametrize("text", ["Дякуємо", "Очікуємо", "Актуально!", "Мархаліака, увага"])
def test_words_and_longer_posts_are_not_taken_for_typos(gaz: Gazetteer, finder: PlaceFinder, text: str) -> None:
    kyiv = [gaz.find(KYIV_OBLAST)[0].id, gaz.find("Київ")[0].id]
    assert finder.find(text, kyiv, alarm=True) == []


# --- robustness ------------------------------------------------------------------------------------


def check_mentions(finder: PlaceFinder, text: str) -> list[Mention]:
    """Every mention inside the text, in text order, one per place; with and without an alarm."""
    for alarm in (False, True):
        found = finder.find(text, alarm=alarm)
        for mention in found:
            assert 0 <= mention.start < mention.end <= len(text), (text, mention)
        assert [m.start for m in found] == sorted(m.start for m in found)
        assert len({m.place.id for m in found}) == len(found)
    return finder.find(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "🚀🛵🤯" * 10,
        "\x00\x01\x1b\x7f",
        "\ud800Обухів\udfff",
        "\u200b\u00adКиїв\u200b",
        "р-н",
        "на",
        "2 на",
        "з заходу",
        "Київська",
        "а" * 10_000,
        "Обухів " * 1500,
        "#" * 5000 + "Київ",
    ],
    ids=lambda t: f"{len(t)}-chars",
)
def test_odd_texts_never_raise(finder: PlaceFinder, text: str) -> None:
    check_mentions(finder, text)


def test_a_long_text_names_each_place_once(finder: PlaceFinder) -> None:
    text = "Обухів " * 1500
    assert len(text) > 10_000
    assert rows(text, finder.find(text)) == [("Обухів", "Обухів", "city", KYIV_OBLAST, None, None, False)]


_WORDS = [
    "Обухів", "ОБУХІВ", "Києва", "на", "з", "зі", "сходу", "заходу", "північніше", "2", "8х", "р-н", "обл.",
    "область", "Київська", "курсом", "Мирне", "Українка", "черкаську", "Харківщина:", "Біла", "Церква",
    "БЦ", "Троя", "ё", "🚨", "\u00ad", "\u200b", "\ud800", "\x00", "\n", "«", "»", "ʼ", "'",
]  # fmt: skip
_CHARS = st.characters(categories=["Lu", "Ll", "Lo", "Mn", "Nd", "Po", "Pd", "Sm", "So", "Zs", "Cf", "Cc", "Cs"])
_PIECES = st.one_of(st.sampled_from(_WORDS), st.text(_CHARS, max_size=8))


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=30), separators=st.lists(st.sampled_from([" ", "", "\n", ", ", "-", ": "])))
def test_any_text_never_raises(finder: PlaceFinder, pieces: list[str], separators: list[str]) -> None:
    text = "".join(piece + (separators[i % len(separators)] if separators else " ") for i, piece in enumerate(pieces))
    check_mentions(finder, text)


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_any_unicode_never_raises(finder: PlaceFinder, text: str) -> None:
    check_mentions(finder, text)
