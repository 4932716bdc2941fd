"""Was an open or a click made by a person, or by a machine acting on their mailbox?

Machine opens and clicks are flagged (``machine: true`` on the engagement event), never
dropped: the record stays complete and whoever counts decides what to count.

What is flagged, and why:

* **A HEAD request** (a link checker's; browsers never send one for a link or an
  image), **no user agent**, or a library's (curl, python-requests, Go, Java, ...):
  no mail client or browser fetches without saying what it is.
* **Apple Mail Privacy Protection**: Apple's proxy fetches every image of every message
  as it arrives, whether or not anyone reads it, and says only ``Mozilla/5.0``. That
  bare agent is flagged on opens and clicks alike.
* **Link scanners** (Microsoft Safe Links, Mimecast, Proofpoint, Barracuda, headless
  browsers, ...) by their agents, and **any click within** ``FAST_CLICK_S`` of the send:
  a person needs longer to receive, open, read and tap, while gateway scanners follow
  every link on delivery, often behind an ordinary browser's agent.

Not flagged: **Gmail's and Yahoo's image proxies** (``GoogleImageProxy``,
``YahooMailProxy``). They fetch the pixel when the person opens the message, on their
behalf (hiding the reader's address and agent), so their opens are human opens.
"""

from __future__ import annotations

import re
from typing import Literal

#: A click this soon after the SMTP server accepted the message is a scanner's.
FAST_CLICK_S = 10.0

#: Apple Mail Privacy Protection's prefetch: the agent and nothing else.
_BARE_MOZILLA = "mozilla/5.0"

# Lowercase substrings of agents that no person reads mail with. Words are matched at
# word ends ("bingbot", "bot/1.0"), so that e.g. "Abbott" in an agent is no bot.
_MACHINE_AGENTS = re.compile(
    r"bot\b|\b(?:crawler|spider|scanner|preview|headlesschrome|phantomjs|slurp)\b"
    r"|bingpreview|googlebot|safelinks|safe links|barracuda|mimecast|proofpoint"
    r"|messagelabs|symantec|trendmicro|trend micro|sophos|fireeye|ironport|forcepoint"
    r"|zscaler|appriver|cisco|^curl/|^wget/|python-|aiohttp/|go-http-client|^java/"
    r"|okhttp|libwww|httpclient|^axios/|node-fetch|^ruby|postmanruntime",
)

Action = Literal["opened", "clicked"]


def machine_reason(
    action: Action, user_agent: str | None, *, sent_ms: int | None, now_ms: int, head: bool = False
) -> str | None:
    """Why this open or click is a machine's (a short reason), or None for a person's.

    ``head``: the request was a HEAD, which link checkers send and browsers never do.
    """
    if head:
        return "head_request"
    agent = (user_agent or "").strip().lower()
    if not agent:
        return "no_user_agent"
    if agent == _BARE_MOZILLA:
        return "privacy_proxy"
    if _MACHINE_AGENTS.search(agent):
        return "machine_agent"
    if action == "clicked" and sent_ms is not None and now_ms - sent_ms < FAST_CLICK_S * 1000:
        return "clicked_on_delivery"
    return None
