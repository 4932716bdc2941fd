# ruff: noqa: E501  (HTML email markup reads better unwrapped)
"""The layout the built-in templates share: a 600 px card that reflows to one column
under 480 px, the brand, the greeting, the items, a button and the recommendations, in
HTML and in text.

``html(...)`` and ``text(...)`` assemble a body around a template's own sentence. The
HTML is styled by classes and one ``<style>`` block, in the brand's colours; the
renderer inlines it per email (``delivery.inline``), keeping the ``@media`` rules for
phones. Every word is English wrapped for gettext (``{% trans %}``, ``_()``), translated
by ``locales/<lang>/LC_MESSAGES/nudge.po`` into the message's ``locale``.
"""

from __future__ import annotations

#: Rules written onto the elements when inlined. Colours of the brand are checked hex
#: values (``NUDGE_BRAND_COLOR``, ``NUDGE_BRAND_BACKGROUND``), safe in a stylesheet.
STYLE = """body { margin:0; padding:0; background:{{ brand.background_color }}; }
.page { background:{{ brand.background_color }}; }
.page-cell { padding:24px 12px; }
.card { max-width:600px; width:100%; background:#ffffff; border-radius:8px; }
.masthead { padding:24px 32px 0 32px; font-family:Helvetica,Arial,sans-serif; }
.logo { display:block; border:0; height:auto; max-width:100%; }
.shop-name { color:#222222; font-size:20px; font-weight:bold; text-decoration:none; }
.content { padding:24px 32px 8px 32px; font-family:Helvetica,Arial,sans-serif; color:#222222; }
.greeting { font-size:16px; margin:0 0 16px 0; }
.intro { font-size:16px; line-height:1.5; margin:0 0 16px 0; }
.items { border-collapse:collapse; margin:8px 0 16px 0; }
.item td { border-bottom:1px solid #eeeeee; }
.item-image { padding:12px 12px 12px 0; vertical-align:top; width:104px; }
.item-image img { display:block; border:0; border-radius:4px; width:96px; height:auto; }
.item-text { padding:12px 0; vertical-align:top; font-family:Helvetica,Arial,sans-serif; color:#222222; font-size:15px; }
.item-title { color:#222222; font-weight:bold; font-size:15px; text-decoration:none; }
.quantity { color:#555555; font-size:14px; }
.old-price { color:#6b6b6b; font-size:13px; }
.line-total { padding:12px 0 12px 12px; vertical-align:top; text-align:right; white-space:nowrap; font-family:Helvetica,Arial,sans-serif; font-size:15px; font-weight:bold; color:#222222; }
.subtotal { padding:12px 0; text-align:right; font-family:Helvetica,Arial,sans-serif; font-size:16px; color:#222222; }
.button-table { margin:16px 0; }
.button-cell { background:{{ brand.primary_color }}; border-radius:6px; }
.button { display:inline-block; padding:12px 24px; color:#ffffff; font-weight:bold; font-size:16px; text-decoration:none; font-family:Helvetica,Arial,sans-serif; }
.link { color:{{ brand.primary_color }}; }
.recs-title { font-size:18px; margin:24px 0 8px 0; }
.recs { text-align:center; font-size:0; }
.rec { display:inline-block; width:124px; max-width:46%; vertical-align:top; padding:8px 4px; text-align:center; font-size:13px; font-family:Helvetica,Arial,sans-serif; color:#222222; }
.rec-image { display:block; margin:0 auto; border:0; border-radius:4px; width:120px; max-width:100%; height:auto; }
.rec-title { display:block; color:#222222; font-size:13px; text-decoration:none; margin-top:6px; }
.rec-price { font-size:13px; color:#555555; }
.code { font-family:monospace; font-size:18px; white-space:nowrap; }
@media only screen and (max-width:480px) {
  .page-cell { padding:0 !important; }
  .card { border-radius:0 !important; }
  .masthead { padding:16px 16px 0 16px !important; }
  .content { padding:16px 16px 8px 16px !important; }
  .item-image { width:80px !important; padding:12px 8px 12px 0 !important; }
  .item-image img { width:72px !important; }
  .line-total { padding-left:8px !important; }
  .rec { width:46% !important; }
  .button-table { width:100% !important; }
  .button { display:block !important; text-align:center !important; }
}
"""

_HTML_HEAD = (
    """<!doctype html>
<html lang="{{ locale|replace('_', '-') }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="x-apple-disable-message-reformatting">
<title>{{ subject }}</title>
<style>
"""
    + STYLE
    + """</style>
</head>
<body>
<table role="presentation" class="page" width="100%" cellpadding="0" cellspacing="0"><tbody>
<tr><td align="center" class="page-cell">
<table role="presentation" class="card" width="600" cellpadding="0" cellspacing="0"><tbody>
{% if brand.logo_url or brand.name %}
<tr><td class="masthead">{% if brand.logo_url %}<a href="{{ shop_url }}"><img class="logo" src="{{ brand.logo_url }}" alt="{{ brand.name }}" width="{{ brand.logo_width }}"></a>{% else %}<a class="shop-name" href="{{ shop_url }}">{{ brand.name }}</a>{% endif %}</td></tr>
{% endif %}
<tr><td class="content">
"""
)

_HTML_TAIL = """</td></tr>
</tbody></table>
</td></tr>
</tbody></table>
</body>
</html>
"""

#: Whom a message greets: the customer, or (``SELLER``) the seller it is written to.
CUSTOMER = "customer.first_name"
SELLER = "seller.name"

_GREETING = "{% if NAME %}{% trans name=NAME %}Hi {{ name }},{% endtrans %}{% else %}{% trans %}Hi there,{% endtrans %}{% endif %}"

# Cart and order lines show a quantity, a line total and the subtotal; a product merely
# viewed or dropped in price shows just its price.
_QUANTITY_HTML = """<span class="quantity">{{ _("Quantity: %(quantity)s", quantity=item.quantity) }}</span><br>
"""
_LINE_TOTAL_HTML = """<td class="line-total" align="right">{{ item.line_total|money(item.currency) }}</td>
"""
_SUBTOTAL_HTML = """{% if subtotal %}
<tr><td class="subtotal" colspan="3" align="right">{{ _("Subtotal: %(amount)s", amount=subtotal.amount|money(subtotal.currency)) }}</td></tr>
{% endif %}
"""

_ITEMS_HTML = """{% if items %}
<table role="presentation" class="items" width="100%" cellpadding="0" cellspacing="0"><tbody>
{% for item in items %}
<tr class="item">
{% if item.image_url %}<td class="item-image" width="104"><a href="{{ item.url }}"><img src="{{ item.image_url }}" alt="{{ item.title }}" width="96"></a></td>
{% endif %}
<td class="item-text">
<a class="item-title" href="{{ item.url }}">{{ item.title }}</a><br>
{QUANTITY}{% if item.old_price %}<s class="old-price">{{ item.old_price|money(item.currency) }}</s> {% endif %}<span class="price">{{ item.price|money(item.currency) }}</span>
</td>
{LINE_TOTAL}</tr>
{% endfor %}
{SUBTOTAL}</tbody></table>
{% endif %}
"""

# Recommendations wrap: four abreast at 600 px, one a row on a phone. Inline blocks
# rather than table cells, which would squeeze four columns into 375 px.
RECS_HTML = """{% if recommendations %}
<h2 class="recs-title">{{ _("You might also like") }}</h2>
<div class="recs">
{% for rec in recommendations[:4] %}
<div class="rec">
{% if rec.image_url %}<a href="{{ rec.url }}"><img class="rec-image" src="{{ rec.image_url }}" alt="{{ rec.title }}" width="120"></a>{% endif %}
<a class="rec-title" href="{{ rec.url }}">{{ rec.title }}</a>
<span class="rec-price">{{ rec.price|money(rec.currency) }}</span>
</div>
{% endfor %}
</div>
{% endif %}
"""


def button(url: str, label: str) -> str:
    return (
        '<table role="presentation" class="button-table" cellpadding="0" cellspacing="0"><tbody>'
        f'<tr><td class="button-cell"><a class="button" href="{url}">{label}</a></td></tr>'
        "</tbody></table>\n"
    )


def html(
    intro: str,
    button_url: str,
    button_label: str,
    *,
    with_items: bool = True,
    quantities: bool = True,
    greet: str = CUSTOMER,
    recommendations: bool = True,
) -> str:
    body = (
        '<p class="greeting">'
        + _GREETING.replace("NAME", greet)
        + "</p>\n"
        + f'<p class="intro">{intro}</p>\n'
    )
    if with_items:
        body += (
            _ITEMS_HTML.replace("{QUANTITY}", _QUANTITY_HTML if quantities else "")
            .replace("{LINE_TOTAL}", _LINE_TOTAL_HTML if quantities else "")
            .replace("{SUBTOTAL}", _SUBTOTAL_HTML if quantities else "")
        )
    recs = RECS_HTML if recommendations else ""
    return _HTML_HEAD + body + button(button_url, button_label) + recs + _HTML_TAIL


# -- shared text fragments ----------------------------------------------------

_ITEMS_TEXT = """{% for item in items %}
- {{ item.title }}{QUANTITY} {{ item.price|money(item.currency) }}{LINE_TOTAL}{{ (" (" ~ _("was %(price)s", price=item.old_price|money(item.currency)) ~ ")") if item.old_price else "" }}
  {{ item.url }}
{% endfor %}
"""
_LINE_TOTAL_TEXT = """{{ (" = " ~ item.line_total|money(item.currency)) if item.line_total is not none else "" }}"""
_SUBTOTAL_TEXT = """{% if subtotal %}

{{ _("Subtotal: %(amount)s", amount=subtotal.amount|money(subtotal.currency)) }}
{% endif %}
"""

RECS_TEXT = """{% if recommendations %}

{{ _("You might also like:") }}
{% for rec in recommendations %}
- {{ rec.title }} {{ rec.price|money(rec.currency) }}
  {{ rec.url }}
{% endfor %}
{% endif %}
"""


def text(
    intro: str,
    link_url: str,
    link_label: str,
    *,
    with_items: bool = True,
    quantities: bool = True,
    greet: str = CUSTOMER,
    recommendations: bool = True,
) -> str:
    # The sandbox trims the newline after a block tag: an intro ending in one
    # (``{% endif %}``) would run into the next line without the extra one.
    gap = "\n\n\n" if intro.endswith("%}") else "\n\n"
    body = _GREETING.replace("NAME", greet) + "\n\n\n" + intro + gap
    if with_items:
        body += _ITEMS_TEXT.replace(
            "{QUANTITY}", " (x{{ item.quantity }})" if quantities else ""
        ).replace("{LINE_TOTAL}", _LINE_TOTAL_TEXT if quantities else "")
        body += (_SUBTOTAL_TEXT if quantities else "") + "\n"
    link_line = link_label + ": " + link_url
    return body + link_line + "\n" + (RECS_TEXT if recommendations else "")
