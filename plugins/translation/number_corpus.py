"""The default translation corpus: English -> French sentences about numbers, dates and quantities.

Every number is written out in words in both languages by num2words, month,
weekday and unit names come from the CLDR data that babel ships, and the
sentences around them (counting things, ages, prices, distances, weights,
durations, dates, times, sums) are short hand-written templates with French
gender and agreement done properly. So the model must learn real French
number words (soixante-dix, quatre-vingt-onze, deux cents / deux cent un),
agreement (une pomme, vingt et une pommes) and word order, not copy digits.

Every English sentence occurs once, so the held-out split shares no pair (and
no source sentence) with training: a test sentence is a new combination of a
template and numbers that training never saw together.
"""

from __future__ import annotations

import random
from functools import lru_cache

from num2words import num2words

#: The corpus never changes with the training seed, so the test split stays held out.
CORPUS_SEED = 20261122
SOURCE_LANGUAGE, TARGET_LANGUAGE = "en", "fr"

# (English subject, English verb form for "have"/"see"..., French subject) and verb tables.
SUBJECTS = [("I", 0, "je"), ("you", 1, "vous"), ("he", 2, "il"), ("she", 2, "elle"),
            ("we", 1, "nous"), ("they", 1, "ils"), ("my sister", 2, "ma sœur"),
            ("our neighbours", 1, "nos voisins")]
# English (base, third person), French by subject: je, vous, il/elle/ma sœur, nous, ils/nos voisins.
VERBS = [
    (("have", "has"), {"je": "j'ai", "vous": "vous avez", "il": "a", "nous": "nous avons", "ils": "ont"}),
    (("see", "sees"), {"je": "je vois", "vous": "vous voyez", "il": "voit", "nous": "nous voyons", "ils": "voient"}),
    (("buy", "buys"), {"je": "j'achète", "vous": "vous achetez", "il": "achète", "nous": "nous achetons",
                       "ils": "achètent"}),
    (("want", "wants"), {"je": "je veux", "vous": "vous voulez", "il": "veut", "nous": "nous voulons",
                         "ils": "veulent"}),
    (("sell", "sells"), {"je": "je vends", "vous": "vous vendez", "il": "vend", "nous": "nous vendons",
                         "ils": "vendent"}),
    (("count", "counts"), {"je": "je compte", "vous": "vous comptez", "il": "compte", "nous": "nous comptons",
                           "ils": "comptent"}),
]
# English singular, plural; French singular, plural, gender.
NOUNS = [
    ("apple", "apples", "pomme", "pommes", "f"), ("book", "books", "livre", "livres", "m"),
    ("cat", "cats", "chat", "chats", "m"), ("dog", "dogs", "chien", "chiens", "m"),
    ("car", "cars", "voiture", "voitures", "f"), ("house", "houses", "maison", "maisons", "f"),
    ("chair", "chairs", "chaise", "chaises", "f"), ("ticket", "tickets", "billet", "billets", "m"),
    ("bottle", "bottles", "bouteille", "bouteilles", "f"), ("letter", "letters", "lettre", "lettres", "f"),
    ("flower", "flowers", "fleur", "fleurs", "f"), ("egg", "eggs", "œuf", "œufs", "m"),
    ("pen", "pens", "stylo", "stylos", "m"), ("box", "boxes", "boîte", "boîtes", "f"),
    ("bird", "birds", "oiseau", "oiseaux", "m"), ("horse", "horses", "cheval", "chevaux", "m"),
    ("key", "keys", "clé", "clés", "f"), ("glass", "glasses", "verre", "verres", "m"),
    ("tree", "trees", "arbre", "arbres", "m"), ("shirt", "shirts", "chemise", "chemises", "f"),
]
# English subject, French subject with the verb "avoir" (ages are "avoir N ans").
AGE_SUBJECTS = [("I am", "j'ai"), ("you are", "vous avez"), ("he is", "il a"), ("she is", "elle a"),
                ("my father is", "mon père a"), ("my mother is", "ma mère a"),
                ("the teacher is", "le professeur a"), ("our neighbour is", "notre voisin a"),
                ("my brother is", "mon frère a"), ("the doctor is", "le médecin a")]
PRICED = [("the book", "le livre"), ("the ticket", "le billet"), ("the car", "la voiture"),
          ("the bicycle", "le vélo"), ("the coat", "le manteau"), ("the room", "la chambre"),
          ("the meal", "le repas"), ("the watch", "la montre"), ("the lamp", "la lampe"),
          ("the bag", "le sac")]
# (CLDR unit, French gender, English template, French template)
UNIT_SENTENCES = [
    ("length-kilometer", "m", "the station is {q} away", "la gare est à {q}"),
    ("length-meter", "m", "the wall is {q} long", "le mur mesure {q}"),
    ("mass-kilogram", "m", "the package weighs {q}", "le colis pèse {q}"),
    ("mass-gram", "m", "the letter weighs {q}", "la lettre pèse {q}"),
    ("volume-liter", "m", "the tank holds {q}", "le réservoir contient {q}"),
    ("duration-day", "m", "the trip lasts {q}", "le voyage dure {q}"),
    ("duration-hour", "f", "the flight lasts {q}", "le vol dure {q}"),
    ("duration-minute", "f", "the film lasts {q}", "le film dure {q}"),
    ("duration-week", "f", "the course lasts {q}", "le cours dure {q}"),
    ("duration-month", "m", "the work lasts {q}", "le travail dure {q}"),
]
DATE_EVENTS = [("the meeting is", "la réunion est"), ("the concert is", "le concert est"),
               ("my birthday is", "mon anniversaire est"), ("the exam is", "l'examen est"),
               ("the party is", "la fête est"), ("the wedding is", "le mariage est")]
BIRTH = [("she was born", "elle est née"), ("he was born", "il est né"), ("I was born", "je suis né"),
         ("my daughter was born", "ma fille est née"), ("my son was born", "mon fils est né")]
DEPARTURES = [("the train leaves", "le train part"), ("the bus arrives", "le bus arrive"),
              ("the shop opens", "le magasin ouvre"), ("the film starts", "le film commence"),
              ("we eat", "nous mangeons"), ("the plane lands", "l'avion atterrit")]
OPERATIONS = [("plus", "plus", lambda a, b: a + b), ("minus", "moins", lambda a, b: a - b),
              ("times", "fois", lambda a, b: a * b)]


# -- number words ----------------------------------------------------------------
def english_number(n: int) -> str:
    return num2words(n, lang="en")


def french_number(n: int, gender: str = "m") -> str:
    """French cardinal; "un" agrees with a feminine noun (une, vingt et une, mille une)."""
    words = num2words(n, lang="fr")
    if gender == "f" and (words == "un" or words.endswith((" un", "-un"))):
        words += "e"
    return words


@lru_cache(maxsize=None)
def _cldr():
    from babel.dates import get_day_names, get_month_names

    return {lang: (get_month_names("wide", locale=lang), get_day_names("wide", locale=lang))
            for lang in ("en", "fr")}


def month_name(month: int, lang: str) -> str:
    return _cldr()[lang][0][month]


def weekday_name(weekday: int, lang: str) -> str:
    return _cldr()[lang][1][weekday]


def unit_phrase(n: int, unit: str, lang: str, gender: str = "m") -> str:
    """E.g. "twelve kilometers" / "douze kilomètres": babel's plural form, number in words."""
    from babel.numbers import format_decimal
    from babel.units import format_unit

    pattern = format_unit(n, unit, locale=lang, length="long")
    words = english_number(n) if lang == "en" else french_number(n, gender)
    phrase = pattern.replace(format_decimal(n, locale=lang), words, 1)
    return " ".join(phrase.split())  # CLDR puts no-break spaces between number and unit


# -- sentences ---------------------------------------------------------------------
def _some_number(rng: random.Random, low: int = 1) -> int:
    """Small numbers often, large ones too: 1-20, 21-100, 101-1000 and 1001-9999 equally likely."""
    high = rng.choice((20, 100, 1000, 9999))
    return rng.randint(max(low, {20: 1, 100: 21, 1000: 101, 9999: 1001}[high]), high)


def counting(rng):
    en_subject, person, fr_subject = rng.choice(SUBJECTS)
    (base, third), forms = rng.choice(VERBS)
    en_sing, en_plur, fr_sing, fr_plur, gender = rng.choice(NOUNS)
    n = _some_number(rng)
    key = {"je": "je", "vous": "vous", "nous": "nous", "ils": "ils", "nos voisins": "ils"}.get(fr_subject, "il")
    verb = forms[key]
    fr_verb = verb if key in ("je", "vous", "nous") else f"{fr_subject} {verb}"
    en_verb = third if person == 2 else base
    en = f"{en_subject} {en_verb} {english_number(n)} {en_plur if n != 1 else en_sing}."
    fr = f"{fr_verb} {french_number(n, gender)} {fr_plur if n > 1 else fr_sing}."
    return en, fr


def age(rng):
    en_subject, fr_subject = rng.choice(AGE_SUBJECTS)
    n = rng.randint(2, 109)
    return f"{en_subject} {english_number(n)} years old.", f"{fr_subject} {french_number(n)} ans."


def price(rng):
    en_item, fr_item = rng.choice(PRICED)
    n = _some_number(rng)
    euros = "euro" if n == 1 else "euros"
    return f"{en_item} costs {english_number(n)} {euros}.", f"{fr_item} coûte {french_number(n)} {euros}."


def quantity(rng):
    unit, gender, en_template, fr_template = rng.choice(UNIT_SENTENCES)
    n = _some_number(rng)
    return (en_template.format(q=unit_phrase(n, unit, "en")) + ".",
            fr_template.format(q=unit_phrase(n, unit, "fr", gender)) + ".")


def _day_of_month(rng) -> tuple[str, str]:
    """A random day of the year: ("March fifth", "cinq mars"); French says "premier" for the first."""
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    fr_day = "premier" if day == 1 else french_number(day)
    return (f"{month_name(month, 'en')} {num2words(day, lang='en', to='ordinal')}",
            f"{fr_day} {month_name(month, 'fr')}")


def event_date(rng):
    en_event, fr_event = rng.choice(DATE_EVENTS)
    en_day, fr_day = _day_of_month(rng)
    weekday = rng.randint(0, 6)
    return (f"{en_event} on {weekday_name(weekday, 'en')}, {en_day}.",
            f"{fr_event} le {weekday_name(weekday, 'fr')} {fr_day}.")


def birth_date(rng):
    en_who, fr_who = rng.choice(BIRTH)
    en_day, fr_day = _day_of_month(rng)
    year = rng.randint(1900, 2030)
    return (f"{en_who} on {en_day}, {num2words(year, lang='en', to='year')}.",
            f"{fr_who} le {fr_day} {french_number(year)}.")


def clock_time(rng):
    en_what, fr_what = rng.choice(DEPARTURES)
    hour, minute = rng.randint(1, 12), rng.choice(range(0, 60, 5))
    fr_hours = f"{french_number(hour, 'f')} {'heure' if hour == 1 else 'heures'}"
    if minute == 0:
        return f"{en_what} at {english_number(hour)} o'clock.", f"{fr_what} à {fr_hours}."
    en_minute = f"oh {english_number(minute)}" if minute < 10 else english_number(minute)
    return (f"{en_what} at {english_number(hour)} {en_minute}.",
            f"{fr_what} à {fr_hours} {french_number(minute, 'f')}.")


def arithmetic(rng):
    en_op, fr_op, apply = rng.choice(OPERATIONS)
    a, b = rng.randint(0, 100), rng.randint(0, 100)
    if en_op == "minus" and b > a:
        a, b = b, a
    if en_op == "times":
        a, b = rng.randint(0, 30), rng.randint(0, 30)
    c = apply(a, b)
    return (f"{english_number(a)} {en_op} {english_number(b)} equals {english_number(c)}.",
            f"{french_number(a)} {fr_op} {french_number(b)} égale {french_number(c)}.")


def bare_number(rng):
    n = _some_number(rng, low=0) if rng.random() < 0.9 else rng.randint(10_000, 999_999)
    return english_number(n), french_number(n)


#: Sentence makers and how often each is drawn.
MAKERS = [(counting, 6), (age, 2), (price, 2), (quantity, 3), (event_date, 2), (birth_date, 2),
          (clock_time, 2), (arithmetic, 2), (bare_number, 2)]


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def generate_pairs(count: int, seed: int = CORPUS_SEED) -> list[tuple[str, str]]:
    """``count`` distinct (English, French) pairs, always the same ones for a seed."""
    rng = random.Random(seed)
    makers = [maker for maker, weight in MAKERS for _ in range(weight)]
    pairs: dict[str, str] = {}
    attempts = 0
    while len(pairs) < count:
        attempts += 1
        if attempts > count * 20:
            raise RuntimeError(f"the templates cannot make {count} distinct sentences")
        en, fr = rng.choice(makers)(rng)
        pairs.setdefault(_capitalize(en), _capitalize(fr))
    return list(pairs.items())
