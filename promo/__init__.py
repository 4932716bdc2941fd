"""Promo code pools: codes loaded or generated into Redis, handed out one per message.

``PromoPools.claim(pool, message_id, ttl_ms, now_ms)`` gives a message its code: the
same code for the same message on every replay, and never one code to two messages.
"""

from nudge.promo.pools import PoolEmpty, PromoCode, PromoPools, generate_codes, read_codes

__all__ = ["PoolEmpty", "PromoCode", "PromoPools", "generate_codes", "read_codes"]
