"""Products found by a search query: stems in English and Russian, BM25, the blend."""

from __future__ import annotations

from typing import Any

import pytest

from nudge.recommender.search_index import SearchIndex, product_text
from nudge.recommender.text import stem, words


def product(pid: str, title: str, **fields: Any) -> dict[str, Any]:
    return {"product_id": pid, "title": title, **fields}


# Not the demo's catalogue: a sports shop selling in two languages.
CATALOGUE = [
    product("en-poles", "Urban Trekking Poles", category_path=["Outdoor", "Hiking"],
            params={"material": "aluminium"}, description="Light poles for city walks."),
    product("en-boots", "Waterproof Hiking Boots", category_path=["Shoes"],
            description="Leather boots with a grip for wet trails."),
    product("en-throw", "Linen Throw", category_path=["Home"],
            description="A soft throw for the sofa."),
    product("en-pack", "Daypack 20L", category_path=["Outdoor", "Bags"],
            description="Carries water, a jacket and trekking snacks."),
    product("ru-sneakers", "Кроссовки беговые женские", category_path=["Обувь", "Бег"],
            params={"цвет": "синий"}),
    product("ru-sticks", "Палки для скандинавской ходьбы", category_path=["Туризм"]),
    product("ru-jacket", "Куртка пуховая мужская", category_path=["Одежда"]),
    product("ru-boots", "Ботинки трекинговые", category_path=["Обувь", "Туризм"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex.build(CATALOGUE)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("кроссовок", "Кроссовки"),
        ("кроссовками", "кроссовка"),
        ("палок", "палки"),
        ("курток", "куртку"),
        ("ботинок", "Ботинки"),
        ("poles", "pole"),
        ("Jackets", "jacket"),
    ],
)
def test_inflected_forms_share_a_stem(one: str, other: str) -> None:
    assert words(one) == words(other)


def test_different_words_keep_different_stems() -> None:
    assert len({stem(w) for w in ["кроссовк", "куртк", "палк", "ботинк", "poles", "boots"]}) == 6
    assert words("Boots for the city, и в снег") == [stem("boots"), stem("city"), stem("снег")]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("trekking poles", "en-poles"),
        ("Trekking Pole", "en-poles"),
        ("hiking boot", "en-boots"),
        ("кроссовок", "ru-sneakers"),
        ("женских кроссовках", "ru-sneakers"),
        ("палок для ходьбы", "ru-sticks"),
        ("курток", "ru-jacket"),
        ("трекинговых ботинок", "ru-boots"),
    ],
)
def test_a_query_finds_the_product_it_names_first(
    index: SearchIndex, query: str, first: str
) -> None:
    assert index.search(query, 3)[0] == first


def test_the_title_outranks_a_mention_in_a_description(index: SearchIndex) -> None:
    found = index.search("trekking", 4)
    assert found[:2] == ["en-poles", "en-pack"], "the pack only mentions trekking snacks"


def test_nothing_matches_nothing(index: SearchIndex) -> None:
    assert index.search("telescope", 4) == []
    assert index.search("", 4) == []
    assert index.search("the and или", 4) == [], "stop words alone match nothing"
    assert SearchIndex.build([]).search("poles", 4) == []


def test_excluded_products_are_skipped(index: SearchIndex) -> None:
    assert index.search("trekking poles", 2, exclude=["en-poles"]) == ["en-pack"]


def test_what_shoppers_bought_after_such_searches_is_blended_in(index: SearchIndex) -> None:
    plain = index.search("boots", 3)
    assert plain == ["en-boots"]
    # Shoppers who searched "boots" mostly went on to buy the daypack.
    blended = index.search("boots", 3, bought={"en-pack": 9.0, "en-boots": 1.0, "gone": 5.0})
    assert blended == ["en-boots", "en-pack"], "the match first, then what sold; unknown ids out"
    assert index.search("trekking", 2) == ["en-poles", "en-pack"]
    sold = index.search("trekking", 2, bought={"en-pack": 10.0})
    assert sold == ["en-pack", "en-poles"], "matching, and sold after such searches: first"


def test_a_products_text_has_its_title_categories_params_and_description() -> None:
    text = product_text(CATALOGUE[0])
    for part in ("Urban Trekking Poles", "Outdoor", "Hiking", "material aluminium", "city walks"):
        assert part in text
