"""``nudge inbound``: bounces, complaints and unsubscribes that come back by email."""
