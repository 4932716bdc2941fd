"""Product recommendations for messages."""

from recommender.popular import PopularRecommender, Recommender

__all__ = ["PopularRecommender", "Recommender"]
