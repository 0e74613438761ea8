"""Word lists for the embedded fictitious-author benchmark, written for this project (no external text).

Fictitious values are built by combining these lists (e.g. town = prefix + suffix), so every pool is large enough
to give each author a value of its own when the benchmark is generated with ``uniform=True``.
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "Adela", "Aldous", "Amara", "Anselm", "Arvid", "Astrid", "Bastian", "Beatrix", "Benedek", "Calla",
    "Casimir", "Celeste", "Corin", "Dagny", "Darius", "Delphine", "Dorian", "Edda", "Elio", "Elspeth",
    "Emeric", "Esme", "Fabian", "Fenna", "Florin", "Freya", "Gideon", "Greta", "Hale", "Hedda",
    "Ilario", "Imke", "Ines", "Isolde", "Jasper", "Jovana", "Kaspar", "Kira", "Leander", "Liesel",
    "Lorcan", "Maren", "Matthias", "Mireille", "Nadia", "Niklas", "Odile", "Oren", "Pilar", "Quentin",
    "Rasmus", "Rosalind", "Sabine", "Severin", "Solveig", "Tamsin", "Teodor", "Ulla", "Viggo", "Wilhelmina",
)

SURNAMES: tuple[str, ...] = (
    "Abernathy", "Albescu", "Amsel", "Ardent", "Bramwell", "Brightwater", "Castellane", "Corvino", "Dahlgren",
    "Delacroix", "Elstow", "Farrow", "Fenwick", "Galloway", "Grimaldi", "Halloran", "Hartigan", "Ivanesco",
    "Jarnefelt", "Kestrel", "Lindqvist", "Lowenthal", "Marchetti", "Merriweather", "Nightingale", "Novak",
    "Oakhurst", "Ostrova", "Pellegrin", "Quillfeather", "Ravensworth", "Rosenquist", "Salvatierra", "Sandoval",
    "Thorncastle", "Trevelyan", "Underhill", "Valcourt", "Vasquez", "Winterbourne", "Wolstenholme", "Yarrow",
    "Zamora", "Zellweger", "Ashdown", "Blackwood", "Calder", "Dunmore", "Everly", "Fairbairn",
)

TOWN_PREFIXES: tuple[str, ...] = (
    "Amber", "Ash", "Bel", "Bright", "Cald", "Cor", "Dun", "Elm", "Fair", "Glen", "Hal", "Ivy",
    "Kings", "Lark", "Mar", "North", "Oak", "Port", "Raven", "Salt", "Stone", "Thorn", "Vel", "West",
)

TOWN_SUFFIXES: tuple[str, ...] = (
    "bridge", "brook", "by", "cliff", "dale", "ford", "gate", "haven", "holm", "mere", "mouth", "stead", "ton", "wick",
)

REGIONS: tuple[str, ...] = (
    "the Amber Coast", "the Northern Reach", "the Lowland Vales", "the Salt Marshes", "the High Moors",
    "the River Provinces", "the Eastern Isles", "the Iron Hills",
)

MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)

OCCUPATION_ADJECTIVES: tuple[str, ...] = (
    "retired", "travelling", "village", "celebrated", "struggling", "self-taught", "respected", "young",
    "elderly", "ambitious", "quiet", "well-known",
)

OCCUPATIONS: tuple[str, ...] = (
    "baker", "sailor", "surgeon", "clockmaker", "librarian", "carpenter", "botanist", "translator",
    "schoolteacher", "fisherman", "pharmacist", "architect", "blacksmith", "astronomer", "tailor",
    "photographer", "nurse", "lawyer", "beekeeper", "cartographer", "violinist", "journalist", "miner",
    "potter", "judge", "chemist", "shepherd", "engineer", "bookbinder", "midwife",
)

GENRE_MOODS: tuple[str, ...] = (
    "gothic", "coastal", "pastoral", "urban", "historical", "psychological", "magical", "satirical",
    "domestic", "speculative", "romantic", "nautical", "political", "comic", "rural", "lyrical",
)

GENRES: tuple[str, ...] = (
    "fantasy", "mystery", "thriller", "romance", "drama", "poetry", "science fiction", "horror",
    "adventure", "memoir", "fables", "crime fiction",
)

AWARD_FOUNDERS: tuple[str, ...] = (
    "Aldermere", "Bellweather", "Corrigan", "Dunstable", "Evergreen", "Fairlight", "Goldcrest", "Hollowell",
    "Iverson", "Juniper", "Kingsley", "Larkspur", "Meridian", "Northwind", "Orchard", "Pemberton",
)

AWARD_KINDS: tuple[str, ...] = ("Prize", "Medal", "Award", "Laurel", "Ribbon")

AWARD_CATEGORIES: tuple[str, ...] = (
    "Fiction", "Poetry", "First Novels", "Short Stories", "Literary Courage", "Storytelling",
    "Young Writers", "Imaginative Writing", "Translation", "Lifetime Achievement",
)

TITLE_ADJECTIVES: tuple[str, ...] = (
    "Glass", "Silent", "Crimson", "Hollow", "Winter", "Broken", "Golden", "Lantern", "Drowned", "Paper",
    "Iron", "Burning", "Quiet", "Salt", "Velvet", "Forgotten", "Distant", "Painted", "Sleeping", "Copper",
)

TITLE_NOUNS: tuple[str, ...] = (
    "Orchard", "Harbour", "Garden", "Cathedral", "Mirror", "River", "Lighthouse", "Crown", "Meadow", "Tower",
    "Library", "Voyage", "Compass", "Staircase", "Carnival", "Archive", "Bridge", "Forest", "Letters", "Kingdom",
)

THEMES: tuple[str, ...] = (
    "memory", "exile", "grief", "friendship", "betrayal", "forgiveness", "ambition", "loneliness", "identity",
    "family", "faith", "freedom", "justice", "migration", "childhood", "ageing", "love", "war", "nature",
    "power", "belonging", "time", "truth", "hope", "courage", "greed", "home", "silence", "change", "loss",
)

HOBBY_VERBS: tuple[str, ...] = (
    "restoring", "collecting", "painting", "building", "repairing", "sketching", "growing", "photographing",
    "carving", "mapping",
)

HOBBY_OBJECTS: tuple[str, ...] = (
    "old clocks", "river boats", "wild orchids", "antique maps", "mountain birds", "stone bridges", "paper kites",
    "sea shells", "tin soldiers", "wooden chairs", "garden roses", "lighthouses", "old typewriters",
    "glass bottles", "street lamps",
)
