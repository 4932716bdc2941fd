"""Products that match a search query: BM25 over the catalogue's words.

A product's text is its title (counted twice: a title names the product, a
description merely mentions things), its category names, its parameters' names and
values, and its description; words are stemmed (:mod:`recommender.text`). The
term counts come from scikit-learn's ``CountVectorizer``; BM25's weighting is applied
once, at build time, so a query is a sum of a few sparse columns.

``search`` may blend in what shoppers who searched the same words went on to buy
(``bought``: product id -> a count, from the stream workers): ``score = bm25 /
max(bm25) + BLEND * bought / max(bought)``, so a product that matches the words and
sold after such searches comes first, and one that only sold after them still shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from nudge.recommender.text import words

#: BM25's usual parameters: term frequency saturation, and length normalisation.
K1 = 1.2
B = 0.75
#: The weight of "went on to buy after such searches" beside the text match.
BLEND = 0.5
TITLE_WEIGHT = 2


def product_text(product: Mapping[str, Any]) -> str:
    """The words a product is found by."""
    parts = [str(product.get("title") or "")] * TITLE_WEIGHT
    parts += [str(name) for name in product.get("category_path") or ()]
    params = product.get("params")
    if isinstance(params, Mapping):
        parts += [f"{name} {value}" for name, value in params.items()]
    parts.append(str(product.get("description") or ""))
    return " ".join(parts)


@dataclass(slots=True)
class Corpus:
    """Products' ids and texts, gathered one product at a time: an index of a large
    catalogue is built without holding its records."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def add(self, product: Mapping[str, Any]) -> None:
        if product.get("product_id"):
            self.ids.append(str(product["product_id"]))
            self.texts.append(product_text(product))

    def index(self) -> SearchIndex:
        return SearchIndex.from_texts(self.ids, self.texts)


@dataclass(frozen=True)
class SearchIndex:
    product_ids: tuple[str, ...]
    vocabulary: Mapping[str, int]
    #: terms x products, BM25 weights (CSR: a term's row is its postings)
    weights: sp.csr_matrix

    @classmethod
    def build(cls, products: Iterable[Mapping[str, Any]]) -> SearchIndex:
        corpus = Corpus()
        for product in products:
            corpus.add(product)
        return corpus.index()

    @classmethod
    def from_texts(cls, ids: Sequence[str], texts: Sequence[str]) -> SearchIndex:
        """The index of products ``ids`` whose ``product_text`` is ``texts``."""
        if not ids:
            return cls((), {}, sp.csr_matrix((0, 0)))
        vectorizer = CountVectorizer(analyzer=words, dtype=np.float32)
        try:
            counts = vectorizer.fit_transform(texts).tocsr()
        except ValueError:  # no product has a single word
            return cls(tuple(ids), {}, sp.csr_matrix((0, len(ids))))
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        average = float(lengths.mean()) or 1.0
        documents = np.asarray((counts > 0).sum(axis=0)).ravel()
        idf = np.log1p((len(ids) - documents + 0.5) / (documents + 0.5)).astype(np.float32)
        coo = counts.tocoo()
        tf = coo.data
        norm = K1 * (1 - B + B * lengths[coo.row] / average)
        data = idf[coo.col] * tf * (K1 + 1) / (tf + norm)
        weights = sp.csr_matrix(
            (data.astype(np.float32), (coo.col, coo.row)), shape=(counts.shape[1], len(ids))
        )
        vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        return cls(tuple(ids), vocabulary, weights)

    def _matched(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(product positions, BM25 scores) of the products matching a query word."""
        rows = [self.vocabulary[t] for t in dict.fromkeys(words(query)) if t in self.vocabulary]
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        summed = np.asarray(self.weights[rows].sum(axis=0)).ravel()
        found = np.flatnonzero(summed)
        return found, summed[found]

    def search(
        self,
        query: str,
        count: int,
        exclude: Iterable[str] = (),
        bought: Mapping[str, float] | None = None,
    ) -> list[str]:
        """The ``count`` best products for ``query``, best first (see the module)."""
        found, scores = self._matched(query)
        blended: dict[int, float] = {}
        if len(found):
            top = float(scores.max())
            # Only the best few can make the list: no need to rank every match.
            keep = min(len(found), count + len(set(exclude)) + len(bought or ()))
            best = (
                np.argpartition(-scores, keep - 1)[:keep]
                if keep < len(found)
                else range(len(found))
            )
            blended = {int(found[i]): float(scores[i]) / top for i in best}
        if bought:
            position = self.positions
            most = max(bought.values(), default=0.0)
            for product_id, value in bought.items():
                at = position.get(product_id)
                if at is not None and most > 0 and value > 0:
                    blended[at] = blended.get(at, 0.0) + BLEND * value / most
        skip = set(exclude)
        ranked = sorted(blended, key=lambda i: (-blended[i], self.product_ids[i]))
        return [self.product_ids[i] for i in ranked if self.product_ids[i] not in skip][:count]

    @cached_property
    def positions(self) -> dict[str, int]:
        return {product_id: i for i, product_id in enumerate(self.product_ids)}
