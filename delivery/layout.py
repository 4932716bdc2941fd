# ruff: noqa: E501  (HTML email markup reads better unwrapped)
"""The layout the built-in templates share: a 600 px card that narrows on a phone, the
greeting, the items, a button and the recommendations, in HTML and in text.

``html(...)`` and ``text(...)`` assemble a body around a template's own sentence.
"""

from __future__ import annotations

# -- shared HTML fragments ----------------------------------------------------

_FONT = "font-family:Helvetica,Arial,sans-serif;color:#222222"

_HTML_HEAD = (
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ subject }}</title>
</head>
<body style="margin:0;padding:0;background:#f4f4f5">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f4f5">
<tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="max-width:600px;width:100%;background:#ffffff;border-radius:8px">
<tr><td style="padding:32px 32px 8px 32px;"""
    + _FONT
    + """">
"""
)

_HTML_TAIL = """</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""

#: Whom a message greets: the customer, or (``SELLER``) the seller it is written to.
CUSTOMER = "customer.first_name"
SELLER = "seller.name"

_GREETING_HTML = """<p style="font-size:16px;margin:0 0 16px 0">Hi {{ NAME or "there" }},</p>
"""

_ITEMS_HTML = (
    """{% if items %}
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="border-collapse:collapse;margin:8px 0 16px 0">
{% for item in items %}
<tr style="border-bottom:1px solid #eeeeee">
{% if item.image_url %}<td width="104" style="padding:12px 12px 12px 0;vertical-align:top">
<a href="{{ item.url }}"><img src="{{ item.image_url }}" alt="{{ item.title }}" width="96" style="display:block;border:0;border-radius:4px;width:96px"></a>
</td>{% endif %}
<td style="padding:12px 0;vertical-align:top;"""
    + _FONT
    + """">
<a href="{{ item.url }}" style="color:#222222;font-weight:bold;font-size:15px;text-decoration:none">{{ item.title }}</a><br>
{QUANTITY}{% if item.old_price %}<s style="color:#888888;font-size:13px">{{ item.old_price|money(item.currency) }}</s> {% endif %}<span style="font-size:15px">{{ item.price|money(item.currency) }}</span>
</td>
</tr>
{% endfor %}
</table>
{% endif %}
"""
)

_QUANTITY_HTML = """<span style="color:#555555;font-size:14px">Quantity: {{ item.quantity }}</span><br>
"""

# Recommendations wrap: four abreast at 600 px, two on a phone. Inline blocks rather
# than table cells, which would squeeze four columns into 375 px.
RECS_HTML = (
    """{% if recommendations %}
<h2 style="font-size:18px;margin:24px 0 8px 0">You might also like</h2>
<div style="text-align:center;font-size:0">
{% for rec in recommendations[:4] %}
<div style="display:inline-block;width:124px;max-width:46%;vertical-align:top;padding:8px 4px;text-align:center;font-size:13px;"""
    + _FONT
    + """">
{% if rec.image_url %}<a href="{{ rec.url }}"><img src="{{ rec.image_url }}" alt="" width="120" style="display:block;margin:0 auto;border:0;border-radius:4px;width:120px;max-width:100%;height:auto"></a>{% endif %}
<a href="{{ rec.url }}" style="display:block;color:#222222;font-size:13px;text-decoration:none;margin-top:6px">{{ rec.title }}</a>
<span style="font-size:13px;color:#555555">{{ rec.price|money(rec.currency) }}</span>
</div>
{% endfor %}
</div>
{% endif %}
"""
)


def button(url: str, label: str) -> str:
    return (
        '<table role="presentation" cellpadding="0" cellspacing="0" style="margin:16px 0">'
        '<tr><td style="background:#1a56db;border-radius:6px">'
        f'<a href="{url}" style="display:inline-block;padding:12px 24px;color:#ffffff;'
        f'font-weight:bold;text-decoration:none;{_FONT.split(";")[0]}">{label}</a>'
        "</td></tr></table>\n"
    )


def html(
    intro: str,
    button_url: str,
    button_label: str,
    *,
    with_items: bool = True,
    quantities: bool = True,
    greet: str = CUSTOMER,
) -> str:
    body = (
        _GREETING_HTML.replace("NAME", greet)
        + f'<p style="font-size:16px;line-height:1.5;margin:0 0 16px 0">{intro}</p>\n'
    )
    if with_items:
        body += _ITEMS_HTML.replace("{QUANTITY}", _QUANTITY_HTML if quantities else "")
    return _HTML_HEAD + body + button(button_url, button_label) + RECS_HTML + _HTML_TAIL


# -- shared text fragments ----------------------------------------------------

_ITEMS_TEXT = """{% for item in items %}
- {{ item.title }}{QUANTITY} {{ item.price|money(item.currency) }}{{ " (was %s)"|format(item.old_price|money(item.currency)) if item.old_price else "" }}
  {{ item.url }}
{% endfor %}
"""

RECS_TEXT = """{% if recommendations %}

You might also like:
{% for rec in recommendations %}
- {{ rec.title }} {{ rec.price|money(rec.currency) }}
  {{ rec.url }}
{% endfor %}
{% endif %}
"""


def text(
    intro: str,
    link_line: str,
    *,
    with_items: bool = True,
    quantities: bool = True,
    greet: str = CUSTOMER,
) -> str:
    # The sandbox trims the newline after a block tag: an intro ending in one
    # (``{% endif %}``) would run into the next line without the extra one.
    gap = "\n\n\n" if intro.endswith("%}") else "\n\n"
    body = "Hi {{ " + greet + ' or "there" }},\n\n' + intro + gap
    if with_items:
        body += _ITEMS_TEXT.replace("{QUANTITY}", " (x{{ item.quantity }})" if quantities else "")
        body += "\n"
    return body + link_line + "\n" + RECS_TEXT
