# ruff: noqa: E501  (HTML email markup reads better unwrapped)
"""Built-in templates, used for whatever subject/html/text a trigger leaves empty.

They are ordinary Jinja sources rendered in the same sandbox as marketers' templates,
so they see exactly the context documented in ``delivery.context``. The footer
(sender, postal address, unsubscribe link) is not here: the renderer appends it to
every marketing email, so no template, built-in or not, can forget it. The layout
they share is ``delivery.layout``.
"""

from __future__ import annotations

from nudge.delivery.layout import RECS_HTML, RECS_TEXT, SELLER, html, text
from nudge.models.message import Message

# -- per kind and step --------------------------------------------------------

_CART = Message(
    subject="{% if customer.first_name %}{{ customer.first_name }}, you{% else %}You{% endif %}"
    " left something in your cart",
    html=html(
        "You left these in your cart. They are saved for you, ready when you are.",
        "{{ cart_url }}",
        "Return to your cart",
    ),
    text=text(
        "You left these in your cart. They are saved for you, ready when you are.",
        "Return to your cart: {{ cart_url }}",
    ),
)

_CART_FOLLOW_UP = Message(
    subject="Still thinking it over? Your cart is waiting",
    html=html(
        "Just a reminder: your cart is still saved, but popular items can sell out.",
        "{{ cart_url }}",
        "Complete your order",
    ),
    text=text(
        "Just a reminder: your cart is still saved, but popular items can sell out.",
        "Complete your order: {{ cart_url }}",
    ),
)

_VIEW = Message(
    subject="{% if items %}Still interested in {{ items[0].title }}?"
    "{% else %}Still interested?{% endif %}",
    html=html(
        "We noticed you were looking at this. Take another look before it is gone.",
        "{{ items[0].url if items else shop_url|utm }}",
        "Take another look",
        quantities=False,  # a viewed product has no quantity to speak of
    ),
    text=text(
        "We noticed you were looking at this. Take another look before it is gone.",
        "Take another look: {{ items[0].url if items else shop_url|utm }}",
        quantities=False,
    ),
)

_CATEGORY = Message(
    subject="{% if category.name %}More {{ category.name }} picked for you"
    "{% else %}Picked for you{% endif %}",
    html=html(
        "{% if category.name %}Still browsing {{ category.name }}? {% endif %}"
        "Here are some favourites we think you will like.",
        "{{ shop_url|utm }}",
        "Keep shopping",
        with_items=False,
    ),
    text=text(
        "{% if category.name %}Still browsing {{ category.name }}? {% endif %}"
        "Here are some favourites we think you will like.",
        "Keep shopping: {{ shop_url|utm }}",
        with_items=False,
    ),
)

_SEARCH = Message(
    subject="{% if search_query %}Still looking for \u201c{{ search_query }}\u201d?"
    "{% else %}Still looking?{% endif %}",
    html=html(
        "{% if search_query %}You searched for <strong>{{ search_query }}</strong>. {% endif %}"
        "Here is what we found for you.",
        "{{ search_url }}",
        "See results",
        with_items=False,
    ),
    text=text(
        "{% if search_query %}You searched for \u201c{{ search_query }}\u201d. {% endif %}"
        "Here is what we found for you.",
        "See results: {{ search_url }}",
        with_items=False,
    ),
)

_WELCOME = Message(
    subject="Welcome{% if customer.first_name %}, {{ customer.first_name }}{% endif %}!",
    html=html(
        "Thanks for joining us. Here is what other shoppers love right now.",
        "{{ shop_url|utm }}",
        "Start shopping",
        with_items=False,
    ),
    text=text(
        "Thanks for joining us. Here is what other shoppers love right now.",
        "Start shopping: {{ shop_url|utm }}",
        with_items=False,
    ),
)

_PROMO_HTML = (
    '{% if promo.code %} Your code <strong style="font-family:monospace;font-size:18px">'
    "{{ promo.code }}</strong> takes 10% off your first order"
    "{% if promo.expires_at %} until {{ promo.expires_at|date }}{% endif %}.{% endif %}"
)
_PROMO_TEXT = (
    "{% if promo.code %} Your code {{ promo.code }} takes 10% off your first order"
    "{% if promo.expires_at %} until {{ promo.expires_at|date }}{% endif %}.{% endif %}"
)

_WELCOME_REMINDER = Message(
    subject="{% if promo.code %}10% off your first order{% else %}Still looking around? "
    "These are this week's favourites{% endif %}",
    html=html(
        "You joined us a week ago. In case you are still looking, these are popular now."
        + _PROMO_HTML,
        "{{ shop_url|utm }}",
        "Have a look",
        with_items=False,
    ),
    text=text(
        "You joined us a week ago. In case you are still looking, these are popular now."
        + _PROMO_TEXT,
        "Have a look: {{ shop_url|utm }}",
        with_items=False,
    ),
)

# An order's items are in ``order.items`` (product ids, quantities, prices), and the
# catalogue's view of them in ``items``.
_THANK_YOU = Message(
    subject="Thank you for your order{% if order.order_id %} {{ order.order_id }}{% endif %}",
    html=html(
        "Thank you for shopping with us. We hope you enjoy your order; here is what"
        " goes well with it.",
        "{{ shop_url|utm }}",
        "Visit the shop",
    ),
    text=text(
        "Thank you for shopping with us. We hope you enjoy your order; here is what"
        " goes well with it.",
        "Visit the shop: {{ shop_url|utm }}",
    ),
)

_ORDER_STATUS = Message(
    subject="Your order {{ order.order_id }}: {{ order.status or 'updated' }}",
    html=html(
        "Your order <strong>{{ order.order_id }}</strong> is now"
        " <strong>{{ order.status or 'updated' }}</strong>.",
        "{{ shop_url|utm }}",
        "See your order",
    ),
    text=text(
        "Your order {{ order.order_id }} is now {{ order.status or 'updated' }}.",
        "See your order: {{ shop_url|utm }}",
    ),
)

_DOUBLE_OPT_IN = Message(
    subject="Please confirm your subscription",
    html=html(
        "Please confirm that you want our emails at {{ recipient.email }}. If you did not"
        " sign up, ignore this message and you will hear nothing more from us.",
        "{{ confirm_url }}",
        "Confirm my subscription",
        with_items=False,
    ).replace(RECS_HTML, ""),
    text=text(
        "Please confirm that you want our emails at {{ recipient.email }}. If you did not"
        " sign up, ignore this message and you will hear nothing more from us.",
        "Confirm: {{ confirm_url }}",
        with_items=False,
    ).replace(RECS_TEXT, ""),
)

_DOUBLE_OPT_IN_REMINDER = Message(
    subject="Reminder: please confirm your subscription",
    html=_DOUBLE_OPT_IN.html,
    text=_DOUBLE_OPT_IN.text,
)

_WIN_BACK = Message(
    subject="We miss you{% if customer.first_name %}, {{ customer.first_name }}{% endif %}",
    html=html(
        "It has been a while. Here is what is new and popular this month, picked from"
        " what you like.",
        "{{ shop_url|utm }}",
        "See what is new",
        with_items=False,
    ),
    text=text(
        "It has been a while. Here is what is new and popular this month, picked from"
        " what you like.",
        "See what is new: {{ shop_url|utm }}",
        with_items=False,
    ),
)

_BIRTHDAY = Message(
    subject="Happy birthday{% if customer.first_name %}, {{ customer.first_name }}{% endif %}!",
    html=html(
        "All the best for your birthday from all of us.{% if promo.code %} Treat yourself:"
        ' <strong style="font-family:monospace;font-size:18px">{{ promo.code }}</strong>'
        " is our present{% if promo.expires_at %}, until {{ promo.expires_at|date }}"
        "{% endif %}.{% endif %}",
        "{{ shop_url|utm }}",
        "Find something nice",
        with_items=False,
    ),
    text=text(
        "All the best for your birthday from all of us.{% if promo.code %} Treat yourself:"
        " {{ promo.code }} is our present{% if promo.expires_at %}, until"
        " {{ promo.expires_at|date }}{% endif %}.{% endif %}",
        "Find something nice: {{ shop_url|utm }}",
        with_items=False,
    ),
)

_PRICE_DROP = Message(
    subject="{% if items %}Price drop: {{ items[0].title }}, now {{ items[0].price|money(items[0].currency) }}"
    "{% else %}A price just dropped{% endif %}",
    preheader="{% if event.old_price and items %}Was {{ event.old_price|money(items[0].currency) }}."
    " {% endif %}Prices can go back up.",
    html=html(
        "Good news: {% if 'subscribed' in event.reasons %}the price you asked us to watch"
        "{% else %}something you looked at{% endif %} just dropped.",
        "{{ items[0].url if items else shop_url|utm }}",
        "Get it at the new price",
        quantities=False,
    ),
    text=text(
        "Good news: {% if 'subscribed' in event.reasons %}the price you asked us to watch"
        "{% else %}something you looked at{% endif %} just dropped.",
        "Get it at the new price: {{ items[0].url if items else shop_url|utm }}",
        quantities=False,
    ),
)

_BACK_IN_STOCK = Message(
    subject="{% if items %}{{ items[0].title }} is back in stock{% else %}Back in stock{% endif %}",
    preheader="Popular items sell out fast.",
    html=html(
        "{% if 'subscribed' in event.reasons %}You asked us to tell you: it is back."
        "{% else %}Something you looked at is available again.{% endif %}"
        " Popular items sell out fast.",
        "{{ items[0].url if items else shop_url|utm }}",
        "Get yours",
        quantities=False,
    ),
    text=text(
        "{% if 'subscribed' in event.reasons %}You asked us to tell you: it is back."
        "{% else %}Something you looked at is available again.{% endif %}"
        " Popular items sell out fast.",
        "Get yours: {{ items[0].url if items else shop_url|utm }}",
        quantities=False,
    ),
)

_SELLER_ORDER_STATUS = Message(
    subject="Order {{ order.order_id }}: {{ order.status or 'updated' }}",
    html=html(
        "Order <strong>{{ order.order_id }}</strong> is now"
        " <strong>{{ order.status or 'updated' }}</strong>. Your items in it, worth"
        " {{ order.total|money(order.currency) }}:",
        "{{ shop_url|utm }}",
        "Open your seller dashboard",
        greet=SELLER,
    ).replace(RECS_HTML, ""),
    text=text(
        "Order {{ order.order_id }} is now {{ order.status or 'updated' }}. Your items in it,"
        " worth {{ order.total|money(order.currency) }}:",
        "Your seller dashboard: {{ shop_url|utm }}",
        greet=SELLER,
    ).replace(RECS_TEXT, ""),
)

_SELLER_MILESTONE = Message(
    subject="{% if milestone == 1 %}Congratulations on your first sale!"
    "{% else %}Congratulations: {{ milestone }} sales!{% endif %}",
    html=html(
        "{% if milestone == 1 %}You made your first sale with us. Welcome aboard, and may"
        " many more follow.{% else %}You have made {{ milestone }} sales with us. Thank you"
        " for selling here.{% endif %}",
        "{{ shop_url|utm }}",
        "Open your seller dashboard",
        with_items=False,
        greet=SELLER,
    ).replace(RECS_HTML, ""),
    text=text(
        "{% if milestone == 1 %}You made your first sale with us. Welcome aboard, and may"
        " many more follow.{% else %}You have made {{ milestone }} sales with us. Thank you"
        " for selling here.{% endif %}",
        "Your seller dashboard: {{ shop_url|utm }}",
        with_items=False,
        greet=SELLER,
    ).replace(RECS_TEXT, ""),
)

_NEUTRAL = Message(
    subject="{% if items %}{{ items[0].title }} and more for you{% else %}Picked for you"
    "{% endif %}",
    html=html("Here is something we think you will like.", "{{ shop_url|utm }}", "Shop now"),
    text=text("Here is something we think you will like.", "Shop now: {{ shop_url|utm }}"),
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


def default_message(kind: str, step: int) -> Message:
    """The built-in message for a template and step (a flow's ``n``th send); a later
    step without its own uses the first; an unknown name gets a neutral one."""
    return _DEFAULTS.get((kind, step)) or _DEFAULTS.get((kind, 0)) or _NEUTRAL
