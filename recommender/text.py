# Russian text here is Russian on purpose, not look-alike Latin letters.
# ruff: noqa: RUF001, RUF002
"""Words of catalogue texts and search queries, reduced to comparable stems.

Shops write in their own language; English and Russian are handled through Snowball
stemmers (PyStemmer), chosen per word by its script, so a query and a title meet on
stems whatever their inflection: "trekking poles" finds "Urban Trekking Poles",
"куртку" finds "Куртки".

Snowball's Russian stemmer keeps the fleeting vowel of genitive plurals ("кроссовок",
"палок", "курток" against "кроссовк-и", "палк-и", "куртк-и"), so a stem ending in a
consonant, "о" or "е", and "к" or "ц" loses that vowel: both forms then meet on
"кроссовк". Now and then two unrelated words share a stem; for ranking products by a
query that costs far less than missing the plural a shopper typed.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

_WORD = re.compile(r"[^\W_]+")
_CYRILLIC = re.compile(r"[а-я]")
_FLEETING = re.compile(r"([бвгджзклмнпрстфхцчшщ])[оеё]([кц])$")
_ENGLISH = Stemmer.Stemmer("english")
_RUSSIAN = Stemmer.Stemmer("russian")
#: Words too common to tell products apart.
STOP_WORDS = frozenset(
    ["a", "an", "and", "for", "in", "of", "on", "or", "the", "to", "with",
     "и", "в", "во", "на", "с", "со", "для", "по", "из", "от", "до", "или"]
)  # fmt: skip


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The stem of one lower-case word."""
    if _CYRILLIC.search(word):
        stemmed = _RUSSIAN.stemWord(word.replace("ё", "е"))
        if len(stemmed) >= 5:
            stemmed = _FLEETING.sub(r"\1\2", stemmed)
        return str(stemmed)
    return str(_ENGLISH.stemWord(word))


def words(text: str) -> list[str]:
    """The stems of ``text``'s words, in order, stop words left out."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]
