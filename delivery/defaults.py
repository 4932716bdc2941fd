# ruff: noqa: E501  (template sources read better unwrapped)
"""Built-in templates, used for whatever subject/html/text/preheader a trigger leaves empty.

They are ordinary Jinja sources rendered in the same sandbox as marketers' templates,
so they see exactly the context documented in ``delivery.context``. Their words are
English wrapped for gettext, and come out in the message's ``locale`` (catalogues in
``locales/``). The footer (sender, postal address, unsubscribe link) is not here: the
renderer appends it to every marketing email, so no template, built-in or not, can
forget it. The layout they share is ``delivery.layout``.
"""

from __future__ import annotations

from dataclasses import replace

from nudge.delivery.inline import inline_template
from nudge.delivery.layout import CUSTOMER, SELLER, html, text
from nudge.models.message import Message


def _(words: str) -> str:
    """A fixed sentence, translated: ``{{ _("...") }}`` (no double quotes in it)."""
    return '{{ _("' + words + '") }}'


def _message(
    subject: str,
    preheader: str,
    intro: str,
    url: str,
    label: str,
    *,
    html_intro: str | None = None,
    with_items: bool = True,
    quantities: bool = True,
    greet: str = CUSTOMER,
    recommendations: bool = True,
) -> Message:
    """One built-in message: HTML and text around the same sentence, link and label
    (``html_intro`` where the HTML says it with markup)."""
    return Message(
        subject=subject,
        preheader=preheader,
        html=html(
            html_intro or intro,
            url,
            label,
            with_items=with_items,
            quantities=quantities,
            greet=greet,
            recommendations=recommendations,
        ),
        text=text(
            intro,
            url,
            label,
            with_items=with_items,
            quantities=quantities,
            greet=greet,
            recommendations=recommendations,
        ),
    )


_SHOP = "{{ shop_url|utm }}"
_FIRST_ITEM = "{{ items[0].url if items else shop_url|utm }}"
_STATUS = "id=order.order_id, status=order.status or _('updated')"
# The HTML says the same sentences as the text, its values marked up outside them: a
# translator sees no HTML, and the stylesheet reaches the markup.
_STATUS_HTML = (
    "{% set id_html %}<strong>{{ order.order_id }}</strong>{% endset %}"
    "{% set status_html %}<strong>{{ order.status or _('updated') }}</strong>{% endset %}"
)
_STATUS_MARKED = "id=id_html, status=status_html"
_CODE_HTML = '{% set code_html %}<strong class="code">{{ promo.code }}</strong>{% endset %}'

# -- per kind and step --------------------------------------------------------

_CART = _message(
    "{% if customer.first_name %}{% trans name=customer.first_name %}{{ name }}, you left something in your cart{% endtrans %}"
    "{% else %}" + _("You left something in your cart") + "{% endif %}",
    _("Your cart is saved for you, ready when you are."),
    _("You left these in your cart. They are saved for you, ready when you are."),
    "{{ cart_url }}",
    _("Return to your cart"),
)

_CART_FOLLOW_UP = _message(
    _("Still thinking it over? Your cart is waiting"),
    _("Popular items can sell out."),
    _("Just a reminder: your cart is still saved, but popular items can sell out."),
    "{{ cart_url }}",
    _("Complete your order"),
)

_VIEW = _message(
    "{% if items %}{% trans title=items[0].title %}Still interested in {{ title }}?{% endtrans %}"
    "{% else %}" + _("Still interested?") + "{% endif %}",
    _("Take another look before it is gone."),
    _("We noticed you were looking at this. Take another look before it is gone."),
    _FIRST_ITEM,
    _("Take another look"),
    quantities=False,  # a viewed product has no quantity to speak of
)

# The category's page, when the context has its URL (NUDGE_CATEGORY_URL); else the shop.
_CATEGORY = _message(
    "{% if category.name %}{% trans name=category.name %}More {{ name }} picked for you{% endtrans %}"
    "{% else %}" + _("Picked for you") + "{% endif %}",
    _("Favourites we think you will like."),
    "{% if category.name %}{% trans name=category.name %}Still browsing {{ name }}?{% endtrans %} {% endif %}"
    + _("Here are some favourites we think you will like."),
    "{{ category.url or shop_url|utm }}",
    "{% if category.name and category.url %}{% trans name=category.name %}See all {{ name }}{% endtrans %}"
    "{% else %}" + _("Keep shopping") + "{% endif %}",
    html_intro="{% if category.name %}{% set name %}{% if category.url %}"
    '<a class="link" href="{{ category.url }}">{{ category.name }}</a>{% else %}{{ category.name }}'
    "{% endif %}{% endset %}{% trans %}Still browsing {{ name }}?{% endtrans %} {% endif %}"
    + _("Here are some favourites we think you will like."),
    with_items=False,
)

_SEARCH = _message(
    "{% if search_query %}{% trans query=search_query %}Still looking for \u201c{{ query }}\u201d?{% endtrans %}"
    "{% else %}" + _("Still looking?") + "{% endif %}",
    _("Here is what we found for you."),
    "{% if search_query %}{% trans query=search_query %}You searched for \u201c{{ query }}\u201d.{% endtrans %} {% endif %}"
    + _("Here is what we found for you."),
    "{{ search_url }}",
    _("See results"),
    html_intro="{% if search_query %}{% set query %}<strong>{{ search_query }}</strong>{% endset %}"
    "{% trans %}You searched for \u201c{{ query }}\u201d.{% endtrans %} {% endif %}"
    + _("Here is what we found for you."),
    with_items=False,
)

_WELCOME = _message(
    "{% if customer.first_name %}{% trans name=customer.first_name %}Welcome, {{ name }}!{% endtrans %}"
    "{% else %}" + _("Welcome!") + "{% endif %}",
    _("Thanks for joining us."),
    _("Thanks for joining us. Here is what other shoppers love right now."),
    _SHOP,
    _("Start shopping"),
    with_items=False,
)


def _promo(sentence: str, with_day: str, code: str) -> str:
    """A promo sentence, with its expiry day when the code has one."""
    return (
        "{% if promo.code %} {% if promo.expires_at %}{% trans code="
        + code
        + ", day=promo.expires_at|date %}"
        + with_day
        + "{% endtrans %}{% else %}{% trans code="
        + code
        + " %}"
        + sentence
        + "{% endtrans %}{% endif %}{% endif %}"
    )


_WELCOME_REMINDER = _message(
    "{% if promo.code %}"
    + _("10%% off your first order")
    + "{% else %}"
    + _("Still looking around? These are this week's favourites")
    + "{% endif %}",
    "{% if promo.code %}{% trans code=promo.code %}Your code {{ code }} is waiting.{% endtrans %}"
    "{% else %}" + _("These are popular now.") + "{% endif %}",
    _("You joined us a week ago. In case you are still looking, these are popular now.")
    + _promo(
        "Your code {{ code }} takes 10% off your first order.",
        "Your code {{ code }} takes 10% off your first order until {{ day }}.",
        "promo.code",
    ),
    _SHOP,
    _("Have a look"),
    html_intro=_("You joined us a week ago. In case you are still looking, these are popular now.")
    + _CODE_HTML
    + _promo(
        "Your code {{ code }} takes 10% off your first order.",
        "Your code {{ code }} takes 10% off your first order until {{ day }}.",
        "code_html",
    ),
    with_items=False,
)

# An order's items are in ``order.items`` (product ids, quantities, prices), and the
# catalogue's view of them, with line totals and the subtotal, in ``items``.
_THANK_YOU = _message(
    "{% if order.order_id %}{% trans id=order.order_id %}Thank you for your order {{ id }}{% endtrans %}"
    "{% else %}" + _("Thank you for your order") + "{% endif %}",
    _("We hope you enjoy it."),
    _(
        "Thank you for shopping with us. We hope you enjoy your order; here is what goes well with it."
    ),
    _SHOP,
    _("Visit the shop"),
)

_ORDER_STATUS = _message(
    "{% trans " + _STATUS + " %}Your order {{ id }}: {{ status }}{% endtrans %}",
    "{% trans " + _STATUS + " %}Your order is now {{ status }}.{% endtrans %}",
    "{% trans " + _STATUS + " %}Your order {{ id }} is now {{ status }}.{% endtrans %}",
    _SHOP,
    _("See your order"),
    html_intro=_STATUS_HTML
    + "{% trans "
    + _STATUS_MARKED
    + " %}Your order {{ id }} is now {{ status }}.{% endtrans %}",
)

_DOUBLE_OPT_IN = _message(
    _("Please confirm your subscription"),
    _("One click and you are in."),
    "{% trans email=recipient.email %}Please confirm that you want our emails at {{ email }}. If you did not"
    " sign up, ignore this message and you will hear nothing more from us.{% endtrans %}",
    "{{ confirm_url }}",
    _("Confirm my subscription"),
    with_items=False,
    recommendations=False,  # a confirmation, nothing to sell
)

_DOUBLE_OPT_IN_REMINDER = Message(
    subject=_("Reminder: please confirm your subscription"),
    preheader=_DOUBLE_OPT_IN.preheader,
    html=_DOUBLE_OPT_IN.html,
    text=_DOUBLE_OPT_IN.text,
)

_WIN_BACK = _message(
    "{% if customer.first_name %}{% trans name=customer.first_name %}We miss you, {{ name }}{% endtrans %}"
    "{% else %}" + _("We miss you") + "{% endif %}",
    _("Here is what is new this month."),
    _(
        "It has been a while. Here is what is new and popular this month, picked from what you like."
    ),
    _SHOP,
    _("See what is new"),
    with_items=False,
)

_BIRTHDAY = _message(
    "{% if customer.first_name %}{% trans name=customer.first_name %}Happy birthday, {{ name }}!{% endtrans %}"
    "{% else %}" + _("Happy birthday!") + "{% endif %}",
    _("All the best from all of us."),
    _("All the best for your birthday from all of us.")
    + _promo(
        "Treat yourself: {{ code }} is our present.",
        "Treat yourself: {{ code }} is our present, until {{ day }}.",
        "promo.code",
    ),
    _SHOP,
    _("Find something nice"),
    html_intro=_("All the best for your birthday from all of us.")
    + _CODE_HTML
    + _promo(
        "Treat yourself: {{ code }} is our present.",
        "Treat yourself: {{ code }} is our present, until {{ day }}.",
        "code_html",
    ),
    with_items=False,
)

_PRICE_DROP = _message(
    "{% if items %}{% trans title=items[0].title, price=items[0].price|money(items[0].currency) %}"
    "Price drop: {{ title }}, now {{ price }}{% endtrans %}{% else %}"
    + _("A price just dropped")
    + "{% endif %}",
    "{% if event.old_price and items %}{% trans price=event.old_price|money(items[0].currency) %}"
    "Was {{ price }}.{% endtrans %} {% endif %}" + _("Prices can go back up."),
    "{% if 'subscribed' in event.reasons %}"
    + _("Good news: the price you asked us to watch just dropped.")
    + "{% else %}"
    + _("Good news: something you looked at just dropped in price.")
    + "{% endif %}",
    _FIRST_ITEM,
    _("Get it at the new price"),
    quantities=False,
)

_BACK_IN_STOCK = _message(
    "{% if items %}{% trans title=items[0].title %}{{ title }} is back in stock{% endtrans %}"
    "{% else %}" + _("Back in stock") + "{% endif %}",
    _("Popular items sell out fast."),
    "{% if 'subscribed' in event.reasons %}"
    + _("You asked us to tell you: it is back.")
    + "{% else %}"
    + _("Something you looked at is available again.")
    + "{% endif %} "
    + _("Popular items sell out fast."),
    _FIRST_ITEM,
    _("Get yours"),
    quantities=False,
)

_SELLER_ORDER_STATUS = _message(
    "{% trans " + _STATUS + " %}Order {{ id }}: {{ status }}{% endtrans %}",
    _("Your items in it and what they are worth."),
    "{% trans " + _STATUS + ", total=order.total|money(order.currency) %}Order {{ id }} is now"
    " {{ status }}. Your items in it, worth {{ total }}:{% endtrans %}",
    _SHOP,
    _("Open your seller dashboard"),
    html_intro=_STATUS_HTML
    + "{% trans "
    + _STATUS_MARKED
    + ", total=order.total|money(order.currency) %}Order {{ id }} is now"
    " {{ status }}. Your items in it, worth {{ total }}:{% endtrans %}",
    greet=SELLER,
    recommendations=False,  # business, nothing to sell
)

_SELLER_MILESTONE = _message(
    "{% if milestone == 1 %}" + _("Congratulations on your first sale!") + "{% else %}"
    "{% trans count=milestone %}Congratulations: {{ count }} sale!{% pluralize %}"
    "Congratulations: {{ count }} sales!{% endtrans %}{% endif %}",
    _("Thank you for selling here."),
    "{% if milestone == 1 %}"
    + _("You made your first sale with us. Welcome aboard, and may many more follow.")
    + "{% else %}{% trans count=milestone %}You have made {{ count }} sale with us. Thank you for selling here."
    "{% pluralize %}You have made {{ count }} sales with us. Thank you for selling here.{% endtrans %}{% endif %}",
    _SHOP,
    _("Open your seller dashboard"),
    with_items=False,
    greet=SELLER,
    recommendations=False,
)

_NEUTRAL = _message(
    "{% if items %}{% trans title=items[0].title %}{{ title }} and more for you{% endtrans %}"
    "{% else %}" + _("Picked for you") + "{% endif %}",
    _("Picked from what you like."),
    _("Here is something we think you will like."),
    _SHOP,
    _("Shop now"),
)

_DEFAULTS: dict[tuple[str, int], Message] = {
    ("abandoned_cart", 0): _CART,
    ("abandoned_cart", 1): _CART_FOLLOW_UP,
    ("abandoned_view", 0): _VIEW,
    ("abandoned_category", 0): _CATEGORY,
    ("abandoned_search", 0): _SEARCH,
    ("welcome", 0): _WELCOME,
    ("welcome", 1): _WELCOME_REMINDER,
    ("thank_you", 0): _THANK_YOU,
    ("order_status", 0): _ORDER_STATUS,
    ("double_opt_in", 0): _DOUBLE_OPT_IN,
    ("win_back", 0): _WIN_BACK,
    ("birthday", 0): _BIRTHDAY,
    ("double_opt_in", 1): _DOUBLE_OPT_IN_REMINDER,
    ("price_drop", 0): _PRICE_DROP,
    ("back_in_stock", 0): _BACK_IN_STOCK,
    ("seller_order_status", 0): _SELLER_ORDER_STATUS,
    ("seller_milestone", 0): _SELLER_MILESTONE,
    ("flow", 0): _NEUTRAL,
}


# As sent: the stylesheet inlined into the source once, not into each email.
_INLINED: dict[tuple[str, int], Message] = {
    key: replace(message, html=inline_template(message.html or ""))
    for key, message in _DEFAULTS.items()
}


def default_message(kind: str, step: int) -> Message:
    """The built-in message for a template and step (a flow's ``n``th send); a later
    step without its own uses the first; an unknown name gets a neutral one. Its HTML
    has the layout's stylesheet inlined already."""
    return _INLINED.get((kind, step)) or _INLINED.get((kind, 0)) or _INLINED[("flow", 0)]
