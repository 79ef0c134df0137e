"""Word pools and text builders for seeded content.

Everything here is plain ASCII with no tab, newline or backslash, so it can be written into
COPY text as is. The pools are chosen from with the caller's RNG only: nothing here is random
by itself.
"""

from __future__ import annotations

import random
import re

# (top category, variant options, [(child category, [nouns])]): 8 tops x 5 children.
CATEGORY_TREE: list[tuple[str, list[str], list[tuple[str, list[str]]]]] = [
    (
        "Electronics",
        ["Black", "White", "Silver", "Graphite", "Blue", "Red"],
        [
            ("Audio", ["Headphones", "Earbuds", "Speaker", "Soundbar", "Turntable", "Amplifier"]),
            ("Computers", ["Laptop", "Monitor", "Keyboard", "Mouse", "Webcam", "Docking Station"]),
            (
                "Phones and Tablets",
                ["Smartphone", "Tablet", "Phone Case", "Charger", "Power Bank", "Screen Protector"],
            ),
            ("Cameras", ["Camera", "Lens", "Tripod", "Camera Bag", "Flash", "Drone"]),
            (
                "Wearables",
                [
                    "Smartwatch",
                    "Fitness Tracker",
                    "Watch Strap",
                    "Smart Ring",
                    "VR Headset",
                    "Smart Glasses",
                ],
            ),
        ],
    ),
    (
        "Home and Kitchen",
        ["Black", "White", "Stainless", "Copper", "Sage", "Charcoal"],
        [
            ("Cookware", ["Skillet", "Saucepan", "Dutch Oven", "Wok", "Stockpot", "Baking Sheet"]),
            (
                "Small Appliances",
                ["Blender", "Toaster", "Kettle", "Coffee Maker", "Air Fryer", "Stand Mixer"],
            ),
            (
                "Tableware",
                ["Dinner Set", "Mug", "Glass Set", "Serving Bowl", "Cutlery Set", "Teapot"],
            ),
            ("Furniture", ["Armchair", "Bookshelf", "Side Table", "Desk", "Bar Stool", "Sofa"]),
            ("Bedding", ["Duvet", "Pillow", "Sheet Set", "Blanket", "Mattress Topper", "Throw"]),
        ],
    ),
    (
        "Clothing",
        ["XS", "S", "M", "L", "XL", "XXL"],
        [
            ("Menswear", ["Shirt", "Chinos", "Jacket", "Sweater", "Polo", "Hoodie"]),
            ("Womenswear", ["Dress", "Blouse", "Cardigan", "Skirt", "Coat", "Jumpsuit"]),
            ("Kids", ["Romper", "Pyjamas", "Raincoat", "Leggings", "Fleece", "Dungarees"]),
            ("Shoes", ["Sneakers", "Boots", "Sandals", "Loafers", "Running Shoes", "Slippers"]),
            ("Accessories", ["Backpack", "Belt", "Scarf", "Wallet", "Cap", "Sunglasses"]),
        ],
    ),
    (
        "Sports and Outdoors",
        ["Black", "Orange", "Olive", "Navy", "Grey", "Red"],
        [
            (
                "Camping",
                ["Tent", "Sleeping Bag", "Camping Stove", "Lantern", "Camping Chair", "Cooler"],
            ),
            (
                "Cycling",
                ["Bike Helmet", "Bike Light", "Saddle", "Cycling Jersey", "Bike Lock", "Pump"],
            ),
            (
                "Fitness",
                [
                    "Yoga Mat",
                    "Dumbbell Set",
                    "Kettlebell",
                    "Resistance Band",
                    "Foam Roller",
                    "Jump Rope",
                ],
            ),
            (
                "Running",
                [
                    "Running Vest",
                    "Water Bottle",
                    "Headlamp",
                    "Running Belt",
                    "Compression Socks",
                    "Hydration Pack",
                ],
            ),
            (
                "Water Sports",
                [
                    "Paddle Board",
                    "Wetsuit",
                    "Snorkel Set",
                    "Swim Goggles",
                    "Dry Bag",
                    "Life Jacket",
                ],
            ),
        ],
    ),
    (
        "Books and Media",
        ["Paperback", "Hardcover", "Ebook", "Audiobook"],
        [
            (
                "Fiction",
                ["Novel", "Story Collection", "Thriller", "Mystery", "Fantasy Saga", "Romance"],
            ),
            (
                "Non-fiction",
                [
                    "Biography",
                    "Memoir",
                    "History",
                    "Essay Collection",
                    "Travel Guide",
                    "Field Guide",
                ],
            ),
            (
                "Cookbooks",
                [
                    "Cookbook",
                    "Baking Book",
                    "Recipe Collection",
                    "Vegetarian Cookbook",
                    "Grill Guide",
                    "Pasta Book",
                ],
            ),
            (
                "Comics",
                [
                    "Graphic Novel",
                    "Comic Omnibus",
                    "Manga Volume",
                    "Comic Anthology",
                    "Art Book",
                    "Sketchbook",
                ],
            ),
            (
                "Music and Film",
                [
                    "Vinyl Record",
                    "Box Set",
                    "Soundtrack",
                    "Documentary",
                    "Concert Film",
                    "Film Collection",
                ],
            ),
        ],
    ),
    (
        "Toys and Games",
        ["Standard", "Deluxe", "Travel", "Collector Edition"],
        [
            (
                "Board Games",
                [
                    "Board Game",
                    "Card Game",
                    "Dice Game",
                    "Strategy Game",
                    "Party Game",
                    "Chess Set",
                ],
            ),
            (
                "Puzzles",
                [
                    "Jigsaw Puzzle",
                    "3D Puzzle",
                    "Puzzle Box",
                    "Brain Teaser",
                    "Floor Puzzle",
                    "Puzzle Mat",
                ],
            ),
            (
                "Building Sets",
                [
                    "Building Set",
                    "Construction Kit",
                    "Marble Run",
                    "Model Kit",
                    "Robot Kit",
                    "Train Set",
                ],
            ),
            (
                "Dolls and Figures",
                ["Action Figure", "Doll", "Plush Toy", "Dollhouse", "Figure Set", "Puppet"],
            ),
            (
                "Outdoor Play",
                ["Kite", "Scooter", "Water Blaster", "Sandbox Set", "Swing", "Frisbee"],
            ),
        ],
    ),
    (
        "Beauty and Health",
        ["50 ml", "100 ml", "200 ml", "500 ml"],
        [
            (
                "Skincare",
                ["Moisturizer", "Cleanser", "Serum", "Face Mask", "Sunscreen", "Eye Cream"],
            ),
            (
                "Haircare",
                ["Shampoo", "Conditioner", "Hair Oil", "Hair Dryer", "Straightener", "Hair Mask"],
            ),
            (
                "Fragrance",
                [
                    "Eau de Parfum",
                    "Eau de Toilette",
                    "Body Mist",
                    "Scented Candle",
                    "Diffuser",
                    "Perfume Oil",
                ],
            ),
            (
                "Personal Care",
                [
                    "Electric Toothbrush",
                    "Shaver",
                    "Trimmer",
                    "Body Wash",
                    "Deodorant",
                    "Hand Cream",
                ],
            ),
            (
                "Wellness",
                [
                    "Vitamin Pack",
                    "Massage Gun",
                    "Heating Pad",
                    "Aroma Oil",
                    "Sleep Mask",
                    "Bath Salts",
                ],
            ),
        ],
    ),
    (
        "Garden and DIY",
        ["Small", "Medium", "Large", "Pro"],
        [
            (
                "Power Tools",
                ["Drill", "Impact Driver", "Circular Saw", "Jigsaw", "Sander", "Angle Grinder"],
            ),
            (
                "Hand Tools",
                [
                    "Hammer",
                    "Screwdriver Set",
                    "Wrench Set",
                    "Pliers",
                    "Utility Knife",
                    "Tape Measure",
                ],
            ),
            (
                "Gardening",
                ["Pruner", "Garden Hose", "Watering Can", "Planter", "Lawn Mower", "Leaf Blower"],
            ),
            (
                "Lighting",
                [
                    "Desk Lamp",
                    "Floor Lamp",
                    "String Lights",
                    "Pendant Light",
                    "Solar Light",
                    "Smart Bulb",
                ],
            ),
            (
                "Storage",
                ["Tool Box", "Storage Bin", "Shelf Unit", "Workbench", "Pegboard", "Garden Shed"],
            ),
        ],
    ),
]

ADJECTIVES = """
    Classic Compact Premium Ultra Eco Smart Pro Essential Deluxe Lightweight Heavy-Duty
    Wireless Portable Modern Vintage Everyday Advanced Urban Nordic Rugged Sleek Organic
    Handcrafted Elite Signature Minimalist Ergonomic Foldable Adjustable Quiet Rapid Solid
    Soft Bold Bright Coastal Alpine Studio Travel Family Outdoor Indoor Daily Max Mini Flex
    Prime Pure Natural Royal Golden Midnight Arctic Summit Horizon Cosy Crisp Fresh Tough
    Grand
""".split()

BRAND_HEADS = """
    Nor Vel Kor Lum Zen Ar Bri Cal Dex El Fen Gal Hal Ix Jor Kai Lor Mar Nex Ob Pax Quin Ros
    Sol Tor Ul Vox Wen Xan Yar Zel Ast Bel Cor Dal Eon
""".split()
BRAND_TAILS = """
    vex ora tek ium ara lux io wave line form craft nova ton ix ella ano core ly mark field
""".split()

FIRST_NAMES = """
    Olivia Liam Emma Noah Ava Oliver Sophia Elijah Isabella James Mia William Amelia
    Benjamin Harper Lucas Evelyn Henry Abigail Theodore Emily Jack Ella Levi Elizabeth
    Alexander Sofia Jackson Avery Mateo Scarlett Daniel Grace Michael Chloe Mason Victoria
    Sebastian Riley Ethan Aria Logan Lily Owen Aurora Samuel Zoey Jacob Nora Asher Hannah
    Aiden Lena Jonas Ines Luca Freya Hugo Maja Finn
""".split()
LAST_NAMES = """
    Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
    Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson
    White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott
    Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter
    Roberts Jansen Mueller Schmidt Dubois Rossi Nowak Larsen Silva Costa Novak
""".split()
CITIES = [
    ("Amsterdam", "NL"),
    ("Rotterdam", "NL"),
    ("Utrecht", "NL"),
    ("Berlin", "DE"),
    ("Hamburg", "DE"),
    ("Munich", "DE"),
    ("Cologne", "DE"),
    ("Paris", "FR"),
    ("Lyon", "FR"),
    ("Marseille", "FR"),
    ("London", "GB"),
    ("Manchester", "GB"),
    ("Leeds", "GB"),
    ("Edinburgh", "GB"),
    ("Madrid", "ES"),
    ("Barcelona", "ES"),
    ("Valencia", "ES"),
    ("Rome", "IT"),
    ("Milan", "IT"),
    ("Turin", "IT"),
    ("Warsaw", "PL"),
    ("Krakow", "PL"),
    ("Stockholm", "SE"),
    ("Gothenburg", "SE"),
    ("Copenhagen", "DK"),
    ("Oslo", "NO"),
    ("Vienna", "AT"),
    ("Zurich", "CH"),
    ("Brussels", "BE"),
    ("Dublin", "IE"),
    ("Lisbon", "PT"),
    ("Porto", "PT"),
    ("New York", "US"),
    ("Chicago", "US"),
    ("Austin", "US"),
    ("Seattle", "US"),
    ("Denver", "US"),
    ("Boston", "US"),
    ("Toronto", "CA"),
    ("Vancouver", "CA"),
]
STREETS = """
    Main Oak Maple Cedar Pine Elm Lake Hill Park River Mill Church Station Market High
    Garden Bridge Harbour Orchard Meadow Willow Chestnut Forest Spring Sunset Victoria King
    Queen North South
""".split()
STREET_KINDS = ["Street", "Road", "Avenue", "Lane", "Way", "Drive", "Place", "Court"]

CARRIERS = ["DHL", "UPS", "FedEx", "PostNL", "DPD", "GLS"]
CANCEL_REASONS = ["customer_request", "payment_review", "out_of_stock", "duplicate_order"]

# --- product descriptions -------------------------------------------------------------------

_DESC_SENTENCES = [
    "Built from {material}, it is designed to last through years of {use}.",
    "The {feature} makes {use} noticeably easier.",
    "Every unit is inspected by hand before it leaves our {place}.",
    "We tested it for {hours} hours in {condition} and it kept performing like new.",
    "Care is simple: {care}.",
    "It pairs well with the rest of the collection, so you can build a setup that suits you.",
    "Customers often tell us that the {feature} is the detail they did not know they needed.",
    "Inside the box you will find the product, a quick-start card and a {accessory}.",
    "The finish resists scratches, fingerprints and the occasional spill.",
    "Dimensions and weight are listed in the specifications; please check them before ordering.",
    "Shipping is carbon neutral, and the packaging is fully recyclable.",
    "Our support team answers questions seven days a week, usually within a few hours.",
    "If it is not right for you, return it within {days} days for a full refund.",
    "The {material} was chosen after comparing more than a dozen alternatives.",
    "Thoughtful details such as the {feature} set it apart from cheaper alternatives.",
    "It is covered by a {years}-year warranty against manufacturing defects.",
    "Designers spent months refining the proportions so it feels balanced in every position.",
    "A {feature} and {material} construction give it a quality you can feel straight away.",
    "Whether you use it for {use} or {use2}, it adapts without fuss.",
    "Independent reviewers praised its reliability in {condition}.",
    "We source the {material} from suppliers who meet strict environmental standards.",
    "The colour is consistent from batch to batch, so replacements always match.",
    "Assembly, where needed, takes less than ten minutes and needs no special tools.",
    "Spare parts are available for at least {years} years after purchase.",
    "It is light enough to move around yet sturdy enough for {use}.",
    "The {feature} was added after listening to feedback from thousands of customers.",
    "Small production runs let us keep quality high and waste low.",
    "Each one carries a serial number, so you can register it for faster support.",
]
_DESC_SLOTS = {
    "material": [
        "recycled aluminium",
        "solid oak",
        "organic cotton",
        "stainless steel",
        "tempered glass",
        "high-grade polymer",
        "full-grain leather",
        "bamboo fibre",
        "merino wool",
        "carbon fibre",
        "glazed ceramic",
        "cast iron",
    ],
    "feature": [
        "low-profile design",
        "quick-release clasp",
        "reinforced stitching",
        "non-slip base",
        "magnetic closure",
        "soft-touch coating",
        "modular layout",
        "intuitive controls",
        "long-life battery",
        "adjustable fit",
        "hidden storage pocket",
        "energy-saving mode",
    ],
    "use": [
        "daily use",
        "weekend adventures",
        "busy mornings",
        "long commutes",
        "family dinners",
        "home workouts",
        "late-night sessions",
        "outdoor trips",
    ],
    "place": ["workshop in Porto", "studio in Leeds", "facility in Gdansk", "workshop in Lyon"],
    "condition": [
        "freezing temperatures",
        "humid summer heat",
        "a busy family kitchen",
        "a dusty workshop",
        "a crowded office",
    ],
    "care": [
        "wipe it with a damp cloth",
        "rinse it in warm water and let it air dry",
        "machine wash it cold and hang it to dry",
        "dust it now and then with a soft brush",
    ],
    "accessory": ["spare strap", "cleaning cloth", "storage pouch", "set of replacement tips"],
    "hours": ["200", "500", "1,000", "2,000"],
    "days": ["30", "60", "90"],
    "years": ["two", "three", "five"],
}


def description_paragraphs(rng: random.Random, count: int = 160) -> list[str]:
    """A pool of paragraphs (about 300-700 characters each) to assemble descriptions from."""
    paragraphs = []
    for _ in range(count):
        sentences = []
        for template in rng.sample(_DESC_SENTENCES, rng.randint(4, 7)):
            slots = {name: rng.choice(words) for name, words in _DESC_SLOTS.items()}
            slots["use2"] = rng.choice(_DESC_SLOTS["use"])
            sentences.append(template.format(**slots))
        paragraphs.append(" ".join(sentences))
    return paragraphs


# --- reviews ---------------------------------------------------------------------------------

REVIEW_TITLES: dict[int, list[str]] = {
    5: [
        "Absolutely love it",
        "Exceeded my expectations",
        "Best purchase this year",
        "Five stars, no notes",
        "Worth every penny",
        "Could not be happier",
        "Fantastic quality",
        "Highly recommend",
        "Perfect",
        "A real gem",
    ],
    4: [
        "Very good overall",
        "Great, with one small gripe",
        "Solid choice",
        "Happy with it",
        "Good value",
        "Does the job well",
        "Nearly perfect",
        "Would buy again",
        "Pleasantly surprised",
        "Recommended",
    ],
    3: [
        "It is okay",
        "Decent but not amazing",
        "Mixed feelings",
        "Average",
        "Fine for the price",
        "Does what it says",
        "Some pros, some cons",
        "Not bad, not great",
        "Middle of the road",
        "Acceptable",
    ],
    2: [
        "Disappointing",
        "Expected more",
        "Not great",
        "Quality could be better",
        "Underwhelming",
        "Had some issues",
        "Meh",
        "Not worth the price",
        "Too many compromises",
        "Would not buy again",
    ],
    1: [
        "Broke after a week",
        "Do not buy",
        "Very disappointed",
        "Returned it",
        "Poor quality",
        "Not as described",
        "Waste of money",
        "Stopped working",
        "Avoid",
        "Terrible",
    ],
}
_GOOD = [
    "The build quality is excellent and it feels like it will last for years.",
    "Setup took five minutes and it has worked flawlessly since.",
    "It looks even better in person than in the photos.",
    "I use it every day and it still feels new.",
    "Great value for money compared with the big names.",
    "My partner liked it so much that we ordered a second one.",
    "The attention to detail is obvious the moment you unbox it.",
    "It does exactly what I needed and nothing gets in the way.",
    "Comfortable, well made and easy to clean.",
    "Honestly one of the best things I have bought online.",
    "It replaced an older model that cost twice as much, and it is better.",
    "Customer service answered my question the same day.",
]
_MIXED = [
    "It does the basics well, but the finish could be nicer.",
    "Good for the price, though I expected it to be a little sturdier.",
    "The instructions were confusing, but once set up it works fine.",
    "Some features are great, others feel like an afterthought.",
    "It is a bit smaller than I imagined from the pictures.",
    "Works as described, nothing more and nothing less.",
    "I would buy it again on sale, but not at full price.",
    "The colour is slightly different from the website.",
    "After a month of use it is holding up reasonably well.",
]
_BAD = [
    "It stopped working properly after a couple of weeks.",
    "The materials feel cheap and one part cracked quickly.",
    "It did not match the description on the product page.",
    "Returning it was a hassle and took far too long.",
    "I had high hopes, but it is flimsy and awkward to use.",
    "Support was polite but could not fix the problem.",
    "It arrived with a scratch and a missing screw.",
    "For this price I expected much better quality.",
    "The battery barely lasts a day.",
]
_NEUTRAL = [
    "Delivery was quick and the packaging was fine.",
    "I bought it as a gift.",
    "I have had it for about three months now.",
    "I compared several options before choosing this one.",
    "Ordered on a Monday and it arrived on Wednesday.",
    "I read a lot of reviews before buying.",
]
# Sentences a review of each rating is built from: mostly of its own tone, some neutral.
REVIEW_SENTENCES: dict[int, list[str]] = {
    5: _GOOD * 3 + _NEUTRAL,
    4: _GOOD * 2 + _MIXED + _NEUTRAL,
    3: _MIXED * 2 + _GOOD + _BAD + _NEUTRAL,
    2: _BAD * 2 + _MIXED + _NEUTRAL,
    1: _BAD * 3 + _NEUTRAL,
}


def slugify(text: str) -> str:
    """ASCII slug: lower case, runs of anything else than a-z0-9 become one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _check_clean() -> None:
    pools: list[str] = [
        *ADJECTIVES,
        *BRAND_HEADS,
        *BRAND_TAILS,
        *FIRST_NAMES,
        *LAST_NAMES,
        *STREETS,
        *STREET_KINDS,
        *CARRIERS,
        *CANCEL_REASONS,
        *_DESC_SENTENCES,
        *_GOOD,
        *_MIXED,
        *_BAD,
        *_NEUTRAL,
    ]
    pools += [city for city, _ in CITIES]
    for titles in REVIEW_TITLES.values():
        pools += titles
    for words in _DESC_SLOTS.values():
        pools += words
    for top, options, children in CATEGORY_TREE:
        pools += [top, *options]
        for child, nouns in children:
            pools += [child, *nouns]
    bad = [word for word in pools if any(ch in word for ch in '\t\n\r\\"')]
    assert not bad, f"text pools must not contain tab, newline, backslash or quote: {bad}"


_check_clean()
