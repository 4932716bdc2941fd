"""Free text that ends up in a header line: a Subject, a display name.

Such text comes from shoppers' profiles (a first name in a subject) and from marketers'
templates, so a stray CR or LF is a storefront's bug, not an attack we must fail the
email for: it is cleaned here instead. Addresses, ids and URLs are never cleaned (a
cleaned address is a different address); ``delivery.message`` refuses those outright.
"""

from __future__ import annotations

import re

# C0 controls (CR, LF, TAB, NUL, ...), space, DEL, C1 controls (NEL among them) and the
# Unicode line and paragraph separators: any run of them becomes one space. Other
# Unicode spaces (a no-break space in "10 %") are left as the author wrote them.
_BREAKS = re.compile("[\x00-\x20\x7f-\x9f\u2028\u2029]+")


def one_line(value: str) -> str:
    """``value`` on one line: control characters and runs of spaces become one space."""
    return _BREAKS.sub(" ", value).strip(" ")
