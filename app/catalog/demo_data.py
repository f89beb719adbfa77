"""The demo catalog of "Corner Café", a café in Berlin that also sells beans, tea, merch and bakes.

Plain data, no database access: prices are EUR cents and include German VAT, as the store's prices
include tax. Food, coffee beans and tea are "reduced" (7 %); drinks served, merch and equipment are
"standard" (19 %). Drinks are made to order, so their stock is the day's capacity rather than goods
on a shelf.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoVariant:
    sku: str
    options: dict[str, str]
    price_minor: int
    compare_at_minor: int | None
    weight_grams: int
    stock: int


@dataclass(frozen=True)
class DemoProduct:
    slug: str
    name: str
    description: str
    category: str
    tax_class: str
    image: str
    variants: tuple[DemoVariant, ...]


@dataclass(frozen=True)
class DemoCategory:
    slug: str
    name: str
    description: str


_IMG = "/static/img/products/"

CATEGORIES: tuple[DemoCategory, ...] = (
    DemoCategory(
        "coffee-beans",
        "Coffee beans",
        "Roasted in small batches in Neukölln every Tuesday, whole bean or ground to order.",
    ),
    DemoCategory("tea", "Tea", "Loose-leaf teas and herbal blends in resealable tins and refill bags."),
    DemoCategory("bakery", "Bakery", "Baked fresh every morning in our kitchen behind the counter."),
    DemoCategory("drinks", "Drinks", "Coffee, tea and cold drinks from the bar, for here or to go."),
    DemoCategory("merch", "Merch", "Mugs, shirts and bags for people who love the corner as much as we do."),
    DemoCategory("brewing-gear", "Brewing gear", "Everything you need to brew café-quality coffee at home."),
    DemoCategory("gift-sets", "Gift sets", "Ready-wrapped boxes for birthdays, thank-yous and Secret Santa."),
)

PRODUCTS: tuple[DemoProduct, ...] = (
    # --- Coffee beans (7 % VAT) -------------------------------------------------------------------
    DemoProduct(
        slug="kreuzberg-house-espresso",
        name="Kreuzberg House Espresso",
        description=(
            "Our everyday espresso: a blend of Brazilian and Colombian coffees with notes of milk chocolate, "
            "hazelnut and a little caramel. Sweet on its own and made for milk."
        ),
        category="coffee-beans",
        tax_class="reduced",
        image=_IMG + "bag-espresso.svg",
        variants=(
            DemoVariant("BEAN-HOUSE-250-WB", {"Size": "250 g", "Grind": "Whole bean"}, 1190, None, 280, 42),
            DemoVariant("BEAN-HOUSE-250-ES", {"Size": "250 g", "Grind": "Espresso"}, 1190, None, 280, 18),
            DemoVariant("BEAN-HOUSE-1K-WB", {"Size": "1 kg", "Grind": "Whole bean"}, 3800, None, 1060, 12),
            DemoVariant("BEAN-HOUSE-1K-ES", {"Size": "1 kg", "Grind": "Espresso"}, 3800, None, 1060, 6),
        ),
    ),
    DemoProduct(
        slug="ethiopia-guji-natural",
        name="Ethiopia Guji Natural",
        description=(
            "Sun-dried on raised beds in the Guji highlands, this one tastes of blueberry, jasmine and ripe "
            "strawberry. Lovely as a pour-over, surprisingly fun as an espresso."
        ),
        category="coffee-beans",
        tax_class="reduced",
        image=_IMG + "bag-sand.svg",
        variants=(
            DemoVariant("BEAN-ETH-250-WB", {"Size": "250 g", "Grind": "Whole bean"}, 1450, None, 280, 24),
            DemoVariant("BEAN-ETH-250-FI", {"Size": "250 g", "Grind": "Filter"}, 1450, None, 280, 14),
            DemoVariant("BEAN-ETH-250-ES", {"Size": "250 g", "Grind": "Espresso"}, 1450, None, 280, 8),
            DemoVariant("BEAN-ETH-1K-WB", {"Size": "1 kg", "Grind": "Whole bean"}, 4800, None, 1060, 7),
            DemoVariant("BEAN-ETH-1K-FI", {"Size": "1 kg", "Grind": "Filter"}, 4800, None, 1060, 5),
            DemoVariant("BEAN-ETH-1K-ES", {"Size": "1 kg", "Grind": "Espresso"}, 4800, None, 1060, 4),
        ),
    ),
    DemoProduct(
        slug="colombia-huila",
        name="Colombia Huila",
        description=(
            "A washed coffee from smallholders around Pitalito, balanced and juicy with red apple, panela and "
            "a clean cocoa finish. The one we reach for when we can't decide."
        ),
        category="coffee-beans",
        tax_class="reduced",
        image=_IMG + "bag-teal.svg",
        variants=(
            DemoVariant("BEAN-COL-250-WB", {"Size": "250 g", "Grind": "Whole bean"}, 1290, None, 280, 30),
            DemoVariant("BEAN-COL-250-FI", {"Size": "250 g", "Grind": "Filter"}, 1290, None, 280, 16),
            DemoVariant("BEAN-COL-1K-WB", {"Size": "1 kg", "Grind": "Whole bean"}, 4200, None, 1060, 9),
            DemoVariant("BEAN-COL-1K-FI", {"Size": "1 kg", "Grind": "Filter"}, 4200, None, 1060, 5),
        ),
    ),
    DemoProduct(
        slug="brazil-cerrado-morning",
        name="Brazil Cerrado Morning",
        description=(
            "Round, nutty and low in acidity, with roasted almond and brown sugar. A forgiving bean for the "
            "moka pot, the French press and the first coffee of the day."
        ),
        category="coffee-beans",
        tax_class="reduced",
        image=_IMG + "bag-espresso.svg",
        variants=(
            DemoVariant("BEAN-BRA-250-WB", {"Size": "250 g", "Grind": "Whole bean"}, 1090, None, 280, 36),
            DemoVariant("BEAN-BRA-250-FI", {"Size": "250 g", "Grind": "Filter"}, 1090, None, 280, 20),
            DemoVariant("BEAN-BRA-1K-WB", {"Size": "1 kg", "Grind": "Whole bean"}, 3400, 3600, 1060, 10),
            DemoVariant("BEAN-BRA-1K-FI", {"Size": "1 kg", "Grind": "Filter"}, 3400, 3600, 1060, 6),
        ),
    ),
    DemoProduct(
        slug="decaf-colombia-sugarcane",
        name="Decaf Colombia Sugarcane",
        description=(
            "Decaffeinated naturally with sugarcane ethyl acetate, so it keeps its sweetness: think stewed "
            "plum and chocolate fudge. All of the ritual, none of the 2 a.m. ceiling-staring."
        ),
        category="coffee-beans",
        tax_class="reduced",
        image=_IMG + "bag-sand.svg",
        variants=(
            DemoVariant("BEAN-DECAF-250-WB", {"Size": "250 g", "Grind": "Whole bean"}, 1250, None, 280, 15),
            DemoVariant("BEAN-DECAF-250-ES", {"Size": "250 g", "Grind": "Espresso"}, 1250, None, 280, 9),
            DemoVariant("BEAN-DECAF-1K-WB", {"Size": "1 kg", "Grind": "Whole bean"}, 4000, None, 1060, 4),
        ),
    ),
    DemoProduct(
        slug="kenya-nyeri-aa",
        name="Kenya Nyeri AA",
        description=(
            "A limited lot from a cooperative washing station on the slopes of Mount Kenya. Blackcurrant, "
            "grapefruit and a syrupy body; brew it as filter and let it cool a little."
        ),
        category="coffee-beans",
        tax_class="reduced",
        image=_IMG + "bag-teal.svg",
        variants=(
            DemoVariant("BEAN-KEN-250-WB", {"Size": "250 g", "Grind": "Whole bean"}, 1650, None, 280, 11),
            DemoVariant("BEAN-KEN-250-FI", {"Size": "250 g", "Grind": "Filter"}, 1650, None, 280, 2),
        ),
    ),
    # --- Tea (7 % VAT) ----------------------------------------------------------------------------
    DemoProduct(
        slug="earl-grey-cornflower",
        name="Earl Grey Cornflower",
        description=(
            "Assam and Ceylon black tea scented with real bergamot oil and scattered with blue cornflower "
            "petals. Good with milk, better with a croissant."
        ),
        category="tea",
        tax_class="reduced",
        image=_IMG + "tea-tin.svg",
        variants=(
            DemoVariant("TEA-EARL-100", {"Size": "100 g tin"}, 890, None, 190, 22),
            DemoVariant("TEA-EARL-250", {"Size": "250 g refill bag"}, 1850, None, 270, 10),
        ),
    ),
    DemoProduct(
        slug="japanese-sencha",
        name="Japanese Sencha",
        description=(
            "A first-flush steamed green tea, grassy and sweet with a gentle savoury finish. "
            "Brew at 70 °C for a minute and re-steep it twice."
        ),
        category="tea",
        tax_class="reduced",
        image=_IMG + "tea-tin.svg",
        variants=(DemoVariant("TEA-SENCHA-100", {}, 1150, None, 190, 14),),
    ),
    DemoProduct(
        slug="rooibos-vanilla",
        name="Rooibos Vanilla",
        description=(
            "South African red bush with bourbon vanilla pieces: naturally caffeine-free, honeyed and cosy. "
            "Our regulars drink it by the pot on winter afternoons."
        ),
        category="tea",
        tax_class="reduced",
        image=_IMG + "tea-tin-brown.svg",
        variants=(
            DemoVariant("TEA-ROOI-100", {"Size": "100 g tin"}, 750, None, 190, 19),
            DemoVariant("TEA-ROOI-250", {"Size": "250 g refill bag"}, 1590, None, 270, 8),
        ),
    ),
    DemoProduct(
        slug="masala-chai",
        name="Masala Chai Loose Leaf",
        description=(
            "Strong Assam with cardamom, cinnamon, ginger, clove and black pepper, the same blend we simmer "
            "for our chai lattes. Brew it in milk for the real thing."
        ),
        category="tea",
        tax_class="reduced",
        image=_IMG + "tea-tin-brown.svg",
        variants=(DemoVariant("TEA-CHAI-100", {}, 850, None, 190, 17),),
    ),
    DemoProduct(
        slug="moroccan-mint",
        name="Moroccan Mint",
        description="Gunpowder green tea with generous amounts of nana mint. Fresh, bright and lovely iced.",
        category="tea",
        tax_class="reduced",
        image=_IMG + "tea-tin.svg",
        variants=(DemoVariant("TEA-MINT-80", {}, 790, None, 170, 13),),
    ),
    DemoProduct(
        slug="ceremonial-matcha",
        name="Ceremonial Matcha",
        description=(
            "Stone-ground shade-grown tencha from Uji, vivid green and creamy with no bitterness. "
            "Whisk it with water, or make the best matcha latte of your life."
        ),
        category="tea",
        tax_class="reduced",
        image=_IMG + "tea-tin.svg",
        variants=(DemoVariant("TEA-MATCHA-30", {}, 2490, None, 90, 0),),
    ),
    # --- Bakery (7 % VAT) -------------------------------------------------------------------------
    DemoProduct(
        slug="butter-croissant",
        name="Butter Croissant",
        description=(
            "Laminated over three days with French butter, so it shatters when you bite it. "
            "Usually gone by eleven on Saturdays."
        ),
        category="bakery",
        tax_class="reduced",
        image=_IMG + "croissant.svg",
        variants=(DemoVariant("BAK-CROIS", {}, 240, None, 70, 24),),
    ),
    DemoProduct(
        slug="pain-au-chocolat",
        name="Pain au Chocolat",
        description="The croissant's dough rolled around two bars of dark chocolate. Best eaten still warm.",
        category="bakery",
        tax_class="reduced",
        image=_IMG + "pastry.svg",
        variants=(DemoVariant("BAK-PAIN-CHOC", {}, 280, None, 85, 18),),
    ),
    DemoProduct(
        slug="franzbroetchen",
        name="Franzbrötchen",
        description=(
            "Hamburg's favourite pastry, squashed flat and sticky with cinnamon sugar. "
            "Our baker grew up with them and won't let us take them off the menu."
        ),
        category="bakery",
        tax_class="reduced",
        image=_IMG + "bun.svg",
        variants=(DemoVariant("BAK-FRANZ", {}, 320, None, 95, 14),),
    ),
    DemoProduct(
        slug="cardamom-bun",
        name="Cardamom Bun",
        description="A Swedish-style knot of soft dough, freshly crushed cardamom and pearl sugar.",
        category="bakery",
        tax_class="reduced",
        image=_IMG + "bun.svg",
        variants=(DemoVariant("BAK-CARDA", {}, 340, None, 90, 12),),
    ),
    DemoProduct(
        slug="banana-bread",
        name="Banana Bread",
        description=(
            "Moist, dark and studded with walnuts, made with bananas that got very, very ripe. "
            "Take a slice with your coffee or a whole loaf home."
        ),
        category="bakery",
        tax_class="reduced",
        image=_IMG + "bread.svg",
        variants=(
            DemoVariant("BAK-BANANA-SLICE", {"Size": "Slice"}, 350, None, 110, 16),
            DemoVariant("BAK-BANANA-LOAF", {"Size": "Whole loaf"}, 1800, None, 900, 4),
        ),
    ),
    DemoProduct(
        slug="rye-sourdough-loaf",
        name="Rye Sourdough Loaf",
        description=(
            "A 750 g loaf of wheat and rye with a dark, crackling crust, leavened by a starter we've fed "
            "since the day we opened."
        ),
        category="bakery",
        tax_class="reduced",
        image=_IMG + "bread.svg",
        variants=(DemoVariant("BAK-SOURDOUGH", {}, 680, None, 760, 8),),
    ),
    DemoProduct(
        slug="chocolate-chip-cookie",
        name="Chocolate Chip Cookie",
        description="Brown butter, chopped dark chocolate and a pinch of flaky sea salt. Crisp edges, gooey middle.",
        category="bakery",
        tax_class="reduced",
        image=_IMG + "cookie.svg",
        variants=(DemoVariant("BAK-COOKIE", {}, 260, None, 80, 20),),
    ),
    DemoProduct(
        slug="baked-cheesecake",
        name="Baked Cheesecake",
        description="Berlin-style Käsekuchen made with quark and lemon zest on a buttery shortcrust base.",
        category="bakery",
        tax_class="reduced",
        image=_IMG + "cake.svg",
        variants=(DemoVariant("BAK-CHEESECAKE", {}, 420, None, 150, 8),),
    ),
    DemoProduct(
        slug="vegan-apple-crumble-cake",
        name="Vegan Apple Crumble Cake",
        description="Brandenburg apples, cinnamon and a thick oat crumble. Plant-based and completely delicious.",
        category="bakery",
        tax_class="reduced",
        image=_IMG + "cake.svg",
        variants=(DemoVariant("BAK-APPLE-CRUMBLE", {}, 390, None, 140, 10),),
    ),
    # --- Drinks served (19 % VAT); stock is the day's capacity -----------------------------------
    DemoProduct(
        slug="espresso",
        name="Espresso",
        description="Pulled on our House Espresso, or ask for today's single origin on the second grinder.",
        category="drinks",
        tax_class="standard",
        image=_IMG + "cup.svg",
        variants=(
            DemoVariant("DRK-ESP-SINGLE", {"Shot": "Single"}, 240, None, 60, 200),
            DemoVariant("DRK-ESP-DOUBLE", {"Shot": "Double"}, 290, None, 90, 200),
        ),
    ),
    DemoProduct(
        slug="flat-white",
        name="Flat White",
        description="A double ristretto with silky, finely textured milk. Strong, small and smooth.",
        category="drinks",
        tax_class="standard",
        image=_IMG + "cup.svg",
        variants=(
            DemoVariant("DRK-FLAT-WHOLE", {"Milk": "Whole milk"}, 380, None, 220, 150),
            DemoVariant("DRK-FLAT-OAT", {"Milk": "Oat"}, 420, None, 220, 150),
        ),
    ),
    DemoProduct(
        slug="cappuccino",
        name="Cappuccino",
        description="Espresso, steamed milk and a proper cap of foam, finished with a little latte art.",
        category="drinks",
        tax_class="standard",
        image=_IMG + "cup.svg",
        variants=(
            DemoVariant("DRK-CAPP-REG-WHOLE", {"Size": "Regular", "Milk": "Whole milk"}, 360, None, 250, 150),
            DemoVariant("DRK-CAPP-REG-OAT", {"Size": "Regular", "Milk": "Oat"}, 400, None, 250, 150),
            DemoVariant("DRK-CAPP-LRG-WHOLE", {"Size": "Large", "Milk": "Whole milk"}, 420, None, 380, 150),
            DemoVariant("DRK-CAPP-LRG-OAT", {"Size": "Large", "Milk": "Oat"}, 460, None, 380, 150),
        ),
    ),
    DemoProduct(
        slug="batch-brew-filter",
        name="Batch Brew Filter",
        description="Today's filter coffee, brewed fresh every half hour. Free refill if you stay in.",
        category="drinks",
        tax_class="standard",
        image=_IMG + "cup.svg",
        variants=(
            DemoVariant("DRK-FILTER-REG", {"Size": "Regular"}, 300, None, 250, 120),
            DemoVariant("DRK-FILTER-LRG", {"Size": "Large"}, 360, None, 380, 120),
        ),
    ),
    DemoProduct(
        slug="iced-latte",
        name="Iced Latte",
        description="A double shot poured over cold milk and plenty of ice. Summer in a glass.",
        category="drinks",
        tax_class="standard",
        image=_IMG + "iced-latte.svg",
        variants=(
            DemoVariant("DRK-ICED-WHOLE", {"Milk": "Whole milk"}, 450, None, 400, 100),
            DemoVariant("DRK-ICED-OAT", {"Milk": "Oat"}, 490, None, 400, 100),
        ),
    ),
    DemoProduct(
        slug="chai-latte",
        name="Chai Latte",
        description="Our masala chai simmered with milk and a spoon of raw cane sugar, not a syrup in sight.",
        category="drinks",
        tax_class="standard",
        image=_IMG + "cup.svg",
        variants=(
            DemoVariant("DRK-CHAI-WHOLE", {"Milk": "Whole milk"}, 420, None, 330, 80),
            DemoVariant("DRK-CHAI-OAT", {"Milk": "Oat"}, 460, None, 330, 80),
        ),
    ),
    DemoProduct(
        slug="hot-chocolate",
        name="Hot Chocolate",
        description="Melted 70 % dark chocolate whisked into hot milk. Thick, rich and not too sweet.",
        category="drinks",
        tax_class="standard",
        image=_IMG + "cup.svg",
        variants=(DemoVariant("DRK-HOTCHOC", {}, 390, None, 330, 80),),
    ),
    DemoProduct(
        slug="house-ginger-lemonade",
        name="House Ginger Lemonade",
        description="Fresh lemons, a fiery ginger syrup we make ourselves and sparkling water.",
        category="drinks",
        tax_class="standard",
        image=_IMG + "lemonade.svg",
        variants=(DemoVariant("DRK-LEMONADE", {}, 380, None, 400, 60),),
    ),
    DemoProduct(
        slug="cold-brew-tonic",
        name="Cold Brew Tonic",
        description="Eighteen-hour cold brew floated on tonic water with a twist of orange. Bitter, bright, bubbly.",
        category="drinks",
        tax_class="standard",
        image=_IMG + "iced-latte.svg",
        variants=(DemoVariant("DRK-CB-TONIC", {}, 480, None, 400, 60),),
    ),
    # --- Merch (19 % VAT) -------------------------------------------------------------------------
    DemoProduct(
        slug="corner-cafe-t-shirt",
        name="Corner Café T-Shirt",
        description="Heavyweight organic cotton in espresso brown with our little bean logo on the chest.",
        category="merch",
        tax_class="standard",
        image=_IMG + "tshirt.svg",
        variants=(
            DemoVariant("TEE-LOGO-S", {"Size": "S"}, 2500, None, 180, 3),
            DemoVariant("TEE-LOGO-M", {"Size": "M"}, 2500, None, 195, 9),
            DemoVariant("TEE-LOGO-L", {"Size": "L"}, 2500, None, 210, 7),
            DemoVariant("TEE-LOGO-XL", {"Size": "XL"}, 2500, None, 225, 0),
        ),
    ),
    DemoProduct(
        slug="enamel-mug",
        name="Enamel Camp Mug",
        description=(
            "A 350 ml steel enamel mug with a contrasting rim, tough enough for the balcony, the campsite "
            "and the office kitchen."
        ),
        category="merch",
        tax_class="standard",
        image=_IMG + "mug.svg",
        variants=(
            DemoVariant("MUG-ENAMEL-CREAM", {"Colour": "Cream"}, 1600, None, 240, 12),
            DemoVariant("MUG-ENAMEL-TEAL", {"Colour": "Teal"}, 1600, None, 240, 1),
            DemoVariant("MUG-ENAMEL-BROWN", {"Colour": "Espresso brown"}, 1600, None, 240, 8),
        ),
    ),
    DemoProduct(
        slug="stoneware-cup",
        name="Stoneware Flat White Cup",
        description=(
            "The same 180 ml handleless cup we serve flat whites in, thrown by a potter in Wedding. "
            "Each glaze comes out slightly different."
        ),
        category="merch",
        tax_class="standard",
        image=_IMG + "tumbler.svg",
        variants=(
            DemoVariant("CUP-STONE-SAND", {"Colour": "Sand"}, 2200, None, 320, 10),
            DemoVariant("CUP-STONE-CHARCOAL", {"Colour": "Charcoal"}, 2200, None, 320, 6),
        ),
    ),
    DemoProduct(
        slug="reusable-travel-cup",
        name="Reusable Travel Cup",
        description="A 340 ml double-walled cup with a splash-proof lid. Bring it along for 20 cents off every drink.",
        category="merch",
        tax_class="standard",
        image=_IMG + "tumbler.svg",
        variants=(DemoVariant("CUP-TRAVEL-340", {}, 1800, None, 210, 15),),
    ),
    DemoProduct(
        slug="canvas-tote-bag",
        name="Canvas Tote Bag",
        description="Sturdy natural canvas with long handles, roomy enough for a sourdough loaf and two bags of beans.",
        category="merch",
        tax_class="standard",
        image=_IMG + "tote.svg",
        variants=(DemoVariant("TOTE-CANVAS", {}, 1400, None, 150, 25),),
    ),
    DemoProduct(
        slug="knit-beanie",
        name="Ribbed Knit Beanie",
        description="Soft merino blend in deep teal with a fold-up cuff. Berlin winters are long.",
        category="merch",
        tax_class="standard",
        image=_IMG + "beanie.svg",
        variants=(DemoVariant("BEANIE-TEAL", {}, 1900, 2400, 110, 3),),
    ),
    # --- Brewing gear (19 % VAT) ------------------------------------------------------------------
    DemoProduct(
        slug="travel-press-brewer",
        name="Travel Press Brewer",
        description=(
            "A light, unbreakable plunger brewer that makes a clean, full-bodied cup in two minutes. "
            "Comes with 350 paper filters and a stirrer."
        ),
        category="brewing-gear",
        tax_class="standard",
        image=_IMG + "brewer.svg",
        variants=(DemoVariant("GEAR-PRESS-BREWER", {}, 3990, None, 450, 9),),
    ),
    DemoProduct(
        slug="ceramic-pour-over-dripper",
        name="Ceramic Pour-Over Dripper",
        description=(
            "A size 02 cone dripper in heavy porcelain that holds its heat, with spiral ribs for an even "
            "flow. Brews one to four cups."
        ),
        category="brewing-gear",
        tax_class="standard",
        image=_IMG + "dripper.svg",
        variants=(
            DemoVariant("GEAR-DRIP-WHITE", {"Colour": "White"}, 2800, None, 420, 8),
            DemoVariant("GEAR-DRIP-TEAL", {"Colour": "Teal"}, 2800, None, 420, 5),
        ),
    ),
    DemoProduct(
        slug="gooseneck-kettle",
        name="Gooseneck Pour-Over Kettle",
        description=(
            "A 1 litre stovetop kettle with a slender spout for slow, precise pouring. "
            "Works on gas, electric and induction."
        ),
        category="brewing-gear",
        tax_class="standard",
        image=_IMG + "kettle.svg",
        variants=(DemoVariant("GEAR-KETTLE-1L", {}, 6900, 7900, 900, 2),),
    ),
    DemoProduct(
        slug="hand-burr-grinder",
        name="Hand Burr Grinder",
        description=(
            "Stainless steel conical burrs with 40 click settings, from Turkish to cold brew. "
            "Freshly ground beans are the cheapest upgrade in coffee."
        ),
        category="brewing-gear",
        tax_class="standard",
        image=_IMG + "grinder.svg",
        variants=(DemoVariant("GEAR-GRINDER-HAND", {}, 8900, None, 650, 6),),
    ),
    DemoProduct(
        slug="paper-filters-02",
        name="Paper Filters Size 02",
        description="A pack of 100 unbleached cone filters that fit our ceramic dripper. Rinse before brewing.",
        category="brewing-gear",
        tax_class="standard",
        image=_IMG + "filters.svg",
        variants=(DemoVariant("GEAR-FILTERS-02-100", {}, 650, None, 120, 40),),
    ),
    DemoProduct(
        slug="french-press",
        name="French Press",
        description="Borosilicate glass in a brushed steel frame with a fine double mesh for a rich, heavy cup.",
        category="brewing-gear",
        tax_class="standard",
        image=_IMG + "press.svg",
        variants=(
            DemoVariant("GEAR-FP-350", {"Size": "350 ml"}, 2900, None, 550, 7),
            DemoVariant("GEAR-FP-1000", {"Size": "1 l"}, 3600, None, 900, 5),
        ),
    ),
    DemoProduct(
        slug="glass-coffee-server",
        name="Glass Coffee Server",
        description="A 600 ml heat-proof glass carafe that sits under your dripper and goes straight to the table.",
        category="brewing-gear",
        tax_class="standard",
        image=_IMG + "dripper.svg",
        variants=(DemoVariant("GEAR-SERVER-600", {}, 2400, None, 380, 6),),
    ),
    # --- Gift sets: coffee or tea only at 7 %, boxes that include gear or a mug at 19 % -------------
    DemoProduct(
        slug="berlin-origins-trio",
        name="Berlin Origins Trio",
        description=(
            "Three 250 g bags, Ethiopia Guji, Colombia Huila and Kenya Nyeri, in a gift box with tasting "
            "notes. A little world tour for the coffee nerd in your life."
        ),
        category="gift-sets",
        tax_class="reduced",
        image=_IMG + "gift-box.svg",
        variants=(DemoVariant("GIFT-ORIGINS-TRIO", {}, 3490, 3890, 960, 8),),
    ),
    DemoProduct(
        slug="tea-tasting-set",
        name="Tea Tasting Set",
        description="Four 50 g pouches: Earl Grey Cornflower, Japanese Sencha, Rooibos Vanilla and Moroccan Mint.",
        category="gift-sets",
        tax_class="reduced",
        image=_IMG + "gift-box.svg",
        variants=(DemoVariant("GIFT-TEA-TASTING", {}, 2400, None, 380, 10),),
    ),
    DemoProduct(
        slug="pour-over-starter-kit",
        name="Pour-Over Starter Kit",
        description=(
            "Our ceramic dripper, 100 filters and a 250 g bag of Colombia Huila, ground for filter. "
            "Everything you need for a great cup tomorrow morning."
        ),
        category="gift-sets",
        tax_class="standard",
        image=_IMG + "gift-box.svg",
        variants=(DemoVariant("GIFT-POUROVER-KIT", {}, 4900, None, 850, 5),),
    ),
    DemoProduct(
        slug="morning-ritual-box",
        name="Morning Ritual Box",
        description="An enamel camp mug and a 250 g bag of Kreuzberg House Espresso, wrapped and ready to give.",
        category="gift-sets",
        tax_class="standard",
        image=_IMG + "gift-box.svg",
        variants=(DemoVariant("GIFT-MORNING-BOX", {}, 2600, None, 560, 6),),
    ),
)
