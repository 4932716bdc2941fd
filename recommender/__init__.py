"""Product recommendations for messages.

``ItemKNN`` is the model (``ItemKNN.fit``, ``ItemKNN.load(dir)``, ``recommend``,
``similar``); ``Recommender`` is what message rendering asks of any source of
recommendations, ``ModelRecommender`` and ``PopularRecommender`` the two there are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nudge.recommender.popular import PopularRecommender, Recommender

if TYPE_CHECKING:
    from nudge.recommender.model import ItemKNN
    from nudge.recommender.service import ModelRecommender
    from nudge.recommender.training import TrainParams

__all__ = ["ItemKNN", "ModelRecommender", "PopularRecommender", "Recommender", "TrainParams"]

# numpy and scipy load only when the model is used: every `nudge` command imports this
# package, and most never touch a model (measured: 0.2 s more per start otherwise).
_LAZY = {
    "ItemKNN": "nudge.recommender.model",
    "ModelRecommender": "nudge.recommender.service",
    "TrainParams": "nudge.recommender.training",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recommender' has no attribute {name!r}")
