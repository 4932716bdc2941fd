"""The demo shop's vocabulary: categories, product nouns, names, time zones."""

from __future__ import annotations

#: Category id -> display name. The first seven are the primary (browsable) categories.
DEMO_CATEGORIES: dict[str, str] = {
    "c-shoes": "Shoes",
    "c-jackets": "Jackets",
    "c-knitwear": "Knitwear",
    "c-bags": "Bags",
    "c-accessories": "Accessories",
    "c-home": "Home & Living",
    "c-outdoor": "Outdoor",
    "c-new": "New In",
    "c-sale": "Sale",
}

# category -> (product nouns, lowest price, highest price)
RANGES: dict[str, tuple[tuple[str, ...], int, int]] = {
    "c-shoes": (("Sneakers", "Loafers", "Chelsea Boots", "Running Shoes", "Sandals"), 39, 149),
    "c-jackets": (
        ("Rain Jacket", "Denim Jacket", "Puffer Jacket", "Field Jacket", "Blazer"),
        59,
        249,
    ),
    "c-knitwear": (
        ("Merino Sweater", "Cardigan", "Turtleneck", "Hoodie", "Cable-Knit Jumper"),
        29,
        139,
    ),
    "c-bags": (
        ("Tote Bag", "Backpack", "Weekender Bag", "Crossbody Bag", "Laptop Sleeve"),
        25,
        189,
    ),
    "c-accessories": (("Wool Beanie", "Leather Belt", "Sunglasses", "Scarf", "Watch"), 9, 129),
    "c-home": (
        ("Ceramic Mug", "Linen Throw", "Scented Candle", "Cushion Cover", "Table Lamp"),
        9,
        99,
    ),
    "c-outdoor": (
        ("Water Bottle", "Trekking Poles", "Camp Lantern", "Picnic Blanket", "Dry Bag"),
        12,
        119,
    ),
}
ADJECTIVES = (
    "Classic",
    "Everyday",
    "Heritage",
    "Urban",
    "Alpine",
    "Coastal",
    "Nordic",
    "Essential",
)
COLOURS = ("Black", "Navy", "Olive", "Sand", "Charcoal", "Rust", "Ivory", "Forest Green")

FIRST_NAMES = (
    "Alice",
    "Ben",
    "Chloe",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kate",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
    "Paul",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Will",
    "Yara",
    "Zoe",
)
LAST_NAMES = (
    "Andersen",
    "Bauer",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jansen",
    "Kowalski",
    "Larsen",
    "Martin",
    "Novak",
    "Olsen",
    "Petit",
    "Rossi",
    "Schmidt",
    "Taylor",
    "Weber",
)
TIMEZONES = (
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/London",
    "Europe/Madrid",
    "Europe/Warsaw",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
)
