"""Voice-assistant texts from templates with slots.

A template is plain text with ``{slot}`` fields. Slot values may contain pause candidates:
``<list>`` between the items of a list and ``<num>`` between the digit groups of a number. The
synthesiser may turn a candidate into a real pause (with ground-truth times), which is what makes
mid-sentence pauses hard for an end-pointer: "add milk <list> eggs <list> and bread".

Templates are split once, by a fixed rule, into the ones used for audio and a held-out set that is
only ever written as text (for language models and truncation repair in later rooms).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

ROOMS = ["kitchen", "living room", "bedroom", "bathroom", "hallway", "office", "garage", "dining room",
         "basement", "kids room", "guest room", "porch", "garden", "attic", "laundry room", "study", "nursery",
         "patio", "upstairs bathroom", "front yard", "back yard", "master bedroom", "playroom", "sunroom"]
DEVICES = ["lights", "lamp", "fan", "heater", "air conditioner", "tv", "radio", "speaker", "coffee machine",
           "dishwasher", "washing machine", "vacuum", "blinds", "oven", "kettle", "printer", "ceiling fan",
           "night light", "humidifier", "sprinklers", "security camera", "garage door", "porch light", "microwave",
           "dryer", "toaster", "floor lamp", "reading light", "thermostat", "curtains"]
CITIES = ["london", "paris", "berlin", "madrid", "rome", "boston", "chicago", "seattle", "denver", "toronto",
          "sydney", "tokyo", "dublin", "vienna", "oslo", "lisbon", "austin", "miami", "dallas", "phoenix",
          "munich", "prague", "atlanta", "houston", "portland", "glasgow", "cairo", "delhi", "seoul", "lima",
          "san francisco", "new york", "los angeles", "amsterdam", "barcelona", "copenhagen", "edinburgh",
          "helsinki", "nairobi", "mexico city", "buenos aires", "cape town", "singapore", "melbourne", "vancouver",
          "montreal", "stockholm", "warsaw", "athens", "istanbul", "brussels", "zurich", "manchester", "detroit"]
NAMES = ["anna", "ben", "carla", "david", "emma", "frank", "grace", "henry", "isabel", "jack", "kate", "liam",
         "maria", "noah", "olivia", "peter", "rachel", "sam", "tom", "sophie", "lucy", "mark", "julia", "alex",
         "mom", "dad", "grandma", "my sister", "my brother", "the office", "the doctor", "the dentist",
         "michael", "sarah", "daniel", "laura", "james", "chloe", "william", "hannah", "george", "zoe", "oscar",
         "mia", "leo", "ava", "ethan", "nora", "lucas", "ella", "grandpa", "my wife", "my husband", "my boss",
         "aunt mary", "uncle joe", "the plumber", "the school", "the vet", "the pharmacy"]
ITEMS = ["milk", "eggs", "bread", "butter", "cheese", "apples", "bananas", "coffee", "tea", "rice", "pasta",
         "tomatoes", "onions", "carrots", "chicken", "fish", "yogurt", "orange juice", "cereal", "sugar",
         "flour", "potatoes", "lemons", "garlic", "olive oil", "soap", "toothpaste", "paper towels",
         "batteries", "dog food", "honey", "salt", "pepper", "spinach", "grapes", "ice cream", "avocados",
         "strawberries", "peanut butter", "oat milk", "broccoli", "mushrooms", "cucumbers", "lettuce",
         "bell peppers", "ground beef", "salmon", "tortillas", "chocolate", "cookies", "almonds", "shampoo",
         "dish soap", "trash bags", "light bulbs", "cat litter", "diapers", "sparkling water", "blueberries"]
ARTISTS = ["the beatles", "taylor swift", "miles davis", "queen", "adele", "bob marley", "coldplay", "mozart",
           "beethoven", "nina simone", "the rolling stones", "daft punk", "abba", "elvis", "bach", "radiohead",
           "ed sheeran", "billie eilish", "frank sinatra", "stevie wonder", "nirvana", "dolly parton",
           "john coltrane", "the weeknd", "fleetwood mac", "norah jones", "chopin", "prince"]
GENRES = ["jazz", "rock", "classical music", "pop", "hip hop", "country", "blues", "reggae", "folk music",
          "lo fi beats", "relaxing music", "workout music", "piano music", "the news", "a podcast",
          "soul music", "electronic music", "kids songs", "christmas music", "ambient music", "the radio",
          "an audiobook", "rain sounds", "sleep sounds", "the top hits"]
DAYS = ["today", "tomorrow", "tonight", "this weekend", "on monday", "on tuesday", "on wednesday",
        "on thursday", "on friday", "on saturday", "on sunday", "next week", "this afternoon", "this evening",
        "tomorrow morning", "tomorrow night", "next monday", "next friday", "in two days", "the day after tomorrow",
        "later today", "this morning", "next month", "over the weekend"]
TASKS = ["call the bank", "pay the rent", "water the plants", "take my medicine", "pick up the kids",
         "buy a birthday present", "book a table", "send the report", "feed the cat", "walk the dog",
         "check the mail", "charge my phone", "renew my passport", "clean the kitchen", "go to the gym",
         "take out the trash", "call my mother", "back up my laptop", "cancel the meeting", "order more coffee",
         "return the library books", "book a haircut", "pay the electricity bill", "call the plumber",
         "pick up the dry cleaning", "email my boss", "buy stamps", "make a doctor appointment",
         "move the car", "defrost the chicken", "lock the back door", "send flowers to my mother"]
EVENTS = ["dentist appointment", "team meeting", "dinner with friends", "yoga class", "doctor appointment",
          "flight to boston", "birthday party", "job interview", "parent teacher meeting", "lunch with anna",
          "piano lesson", "soccer practice", "book club", "haircut", "conference call", "date night",
          "tennis match", "car service", "vet appointment", "weekly review"]
QUESTIONS = ["how tall is mount everest", "what is the capital of australia", "how far away is the moon",
             "who wrote romeo and juliet", "how many days are in a leap year", "what is the speed of light",
             "when does summer start", "how do you make pancakes", "what time is it in tokyo",
             "how many ounces are in a cup", "what is the population of canada", "who painted the mona lisa",
             "why is the sky blue", "how long do cats live", "what does a bee eat",
             "how many miles is a marathon", "who invented the telephone", "what is the tallest building",
             "how hot is the sun", "what is the biggest ocean", "how many people live in london",
             "when was the first moon landing", "how do i boil an egg", "what is a good name for a dog",
             "how many cups are in a liter", "what is the longest river in the world"]
UNITS = ["seconds", "minutes", "hours"]
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """0..100 as words (the corpus text is normalised: spoken forms only, no digits)."""
    if not 0 <= n <= 100:
        raise ValueError(f"number_words covers 0..100, got {n}")
    if n == 100:
        return "one hundred"
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])


def _pick(rng: np.random.Generator, xs: list[str]) -> str:
    return xs[int(rng.integers(len(xs)))]


def _items(rng):
    k = int(rng.integers(2, 5))
    chosen = [ITEMS[i] for i in rng.choice(len(ITEMS), size=k, replace=False)]
    return " <list> ".join(chosen[:-1]) + " <list> and " + chosen[-1]


def _phone(rng):
    groups = [3, 3, 4]
    return " <num> ".join(" ".join(_pick(rng, ONES) for _ in range(g)) for g in groups)


def _code(rng):
    return " <num> ".join(" ".join(_pick(rng, ONES) for _ in range(2)) for _ in range(2))


def _time(rng):
    h = number_words(int(rng.integers(1, 13)))
    m = int(rng.integers(0, 4)) * 15
    ampm = _pick(rng, ["in the morning", "in the evening", "a m", "p m", ""])
    t = h if m == 0 else f"{h} {number_words(m)}" if m != 15 else f"quarter past {h}"
    return f"{t} {ampm}".strip()


MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
            "eighteenth", "nineteenth", "twentieth", "twenty first", "twenty second", "twenty third",
            "twenty fourth", "twenty fifth", "twenty sixth", "twenty seventh", "twenty eighth"]
PLACES = ["the airport", "the train station", "the nearest pharmacy", "the supermarket", "work", "the gym",
          "the city center", "the hospital", "my parents house", "the beach", "the museum", "the library",
          "the nearest gas station", "school", "the post office", "the park"]
POLITE = ["please", "could you", "can you", "would you", "i would like you to", "i need you to",
          "would you mind if you", "do me a favor and"]


def _date(rng):
    return f"{_pick(rng, ['the', 'on the'])} {_pick(rng, ORDINALS)} of {_pick(rng, MONTHS)}"


SLOTS = {
    "room": lambda r: _pick(r, ROOMS), "device": lambda r: _pick(r, DEVICES), "city": lambda r: _pick(r, CITIES),
    "name": lambda r: _pick(r, NAMES), "item": lambda r: _pick(r, ITEMS), "items": _items,
    "artist": lambda r: _pick(r, ARTISTS), "genre": lambda r: _pick(r, GENRES), "day": lambda r: _pick(r, DAYS),
    "task": lambda r: _pick(r, TASKS), "event": lambda r: _pick(r, EVENTS), "question": lambda r: _pick(r, QUESTIONS),
    "n": lambda r: number_words(int(r.integers(1, 60))), "unit": lambda r: _pick(r, UNITS),
    "pct": lambda r: number_words(int(r.integers(1, 11)) * 10), "temp": lambda r: number_words(int(r.integers(16, 28))),
    "time": _time, "phone": _phone, "code": _code, "date": _date, "month": lambda r: _pick(r, MONTHS),
    "place": lambda r: _pick(r, PLACES), "big": lambda r: number_words(int(r.integers(20, 101))),
}


@dataclass(frozen=True)
class Template:
    domain: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.domain}:{self.text}"

    def fill(self, rng: np.random.Generator) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: SLOTS[m.group(1)](rng), self.text)


_T = [
    # smart home
    ("home", "turn on the {room} {device}"), ("home", "turn off the {device} in the {room}"),
    ("home", "switch off all the lights"), ("home", "dim the {room} lights to {pct} percent"),
    ("home", "set the {room} temperature to {temp} degrees"), ("home", "is the {device} still on"),
    ("home", "turn the {device} up a little"), ("home", "lock the front door and turn off the {device}"),
    ("home", "close the blinds in the {room}"), ("home", "start the {device} at {time}"),
    ("home", "make the {room} a bit warmer please"), ("home", "can you turn down the {device}"),
    # timers and alarms
    ("timer", "set a timer for {n} {unit}"), ("timer", "set a {n} minute timer for the pasta"),
    ("timer", "how much time is left on my timer"), ("timer", "cancel the {device} timer"),
    ("timer", "add {n} {unit} to the timer"), ("alarm", "wake me up at {time}"),
    ("alarm", "set an alarm for {time} {day}"), ("alarm", "turn off my alarm for {day}"),
    ("alarm", "snooze for {n} minutes"),
    # lists
    ("list", "add {item} to my shopping list"), ("list", "add {items} to the shopping list"),
    ("list", "remove {item} from my list"), ("list", "what is on my shopping list"),
    ("list", "put {items} on my grocery list"), ("list", "do i need to buy {item}"),
    # weather
    ("weather", "what is the weather like in {city}"), ("weather", "will it rain in {city} {day}"),
    ("weather", "do i need an umbrella {day}"), ("weather", "how cold will it be {day}"),
    ("weather", "what is the forecast for {city} {day}"), ("weather", "is it going to snow {day}"),
    # music and media
    ("music", "play some {genre}"), ("music", "play {artist}"), ("music", "play something by {artist} in the {room}"),
    ("music", "skip this song"), ("music", "turn the volume up to {pct} percent"), ("music", "what song is this"),
    ("music", "pause the music"), ("music", "play {genre} on the {room} speaker"),
    # calls and messages
    ("call", "call {name}"), ("call", "call {name} on speaker"), ("call", "dial {phone}"),
    ("call", "send a message to {name} saying i will be late"), ("call", "text {name} that i am on my way"),
    ("call", "read my new messages"), ("call", "call {name} at {phone}"),
    # reminders and calendar
    ("reminder", "remind me to {task} {day}"), ("reminder", "remind me to {task} at {time}"),
    ("reminder", "what are my reminders for {day}"), ("calendar", "add a {event} {day} at {time}"),
    ("calendar", "when is my {event}"), ("calendar", "cancel my {event} {day}"),
    ("calendar", "what is on my calendar {day}"), ("calendar", "move my {event} to {day}"),
    # questions and misc
    ("question", "{question}"), ("question", "hey can you tell me {question}"),
    ("misc", "what time is it"), ("misc", "the door code is {code}"), ("misc", "my pin is {code}"),
    ("misc", "translate good morning into spanish"), ("misc", "tell me a joke"),
    # longer conversational turns
    ("chat", "i am thinking about going to {city} {day} what do you think the weather will be like"),
    ("chat", "so i need to {task} and also {task} before {time} can you help me remember"),
    ("chat", "i was wondering if you could play some {genre} while i cook dinner in the {room}"),
    ("chat", "okay so first turn off the {device} and then remind me to {task} {day}"),
    ("chat", "my friend {name} is coming over {day} so please add {items} to the list"),
    ("chat", "i do not really like {artist} can you play something more like {genre} instead"),
    ("chat", "could you check whether it will rain in {city} {day} because i want to go for a walk"),
    ("chat", "actually never mind just set a timer for {n} {unit} and turn on the {room} lights"),
    ("chat", "when i get home {day} i want the {room} to be warm so set it to {temp} degrees"),
    ("chat", "please call {name} and tell them that the {event} has been moved to {day}"),
    # broader language (stop 13): politeness, indirect requests, corrections, dates, places, numbers
    ("home", "could you please turn on the {device}"), ("home", "i would like the {room} lights a bit dimmer"),
    ("home", "would you mind switching off the {device}"), ("home", "it is too dark in the {room}"),
    ("home", "can you make it warmer in here"), ("home", "is the {device} in the {room} turned off"),
    ("home", "turn the {room} lights to {pct} percent no wait make that {pct}"),
    ("home", "open the {device} in the {room}"), ("home", "i am cold turn up the heat to {temp}"),
    ("home", "please set the thermostat to {temp} degrees at {time}"),
    ("timer", "could you start a timer for {n} {unit}"), ("timer", "i need a timer for {n} minutes please"),
    ("timer", "stop the timer"), ("timer", "how long is left on the {device} timer"),
    ("timer", "set two timers one for {n} minutes and one for {n} minutes"),
    ("alarm", "i need to get up at {time} {day}"), ("alarm", "please wake me at {time}"),
    ("alarm", "change my alarm to {time}"), ("alarm", "did i set an alarm for {day}"),
    ("alarm", "set an alarm for {time} no sorry {time}"),
    ("list", "i would like to add {item} to my list"), ("list", "can you put {item} on the shopping list"),
    ("list", "we are out of {item}"), ("list", "take {item} off the list"),
    ("list", "add {item} no not {item} add {item}"), ("list", "read me my shopping list"),
    ("list", "could you remind me what is on my list"), ("list", "do we have {item} on the list already"),
    ("weather", "what is the temperature outside"), ("weather", "is it sunny in {city} right now"),
    ("weather", "should i take a jacket {day}"), ("weather", "how windy is it going to be {day}"),
    ("weather", "tell me the weather for {city} on {date}"), ("weather", "what will the weather be like {day}"),
    ("weather", "is it going to be hot in {city} next week"),
    ("music", "i want to listen to {artist}"), ("music", "could you play some {genre} please"),
    ("music", "put on {genre} in the {room}"), ("music", "play the latest album by {artist}"),
    ("music", "turn it down a bit"), ("music", "play the next song"), ("music", "who sings this song"),
    ("music", "stop the music in {n} minutes"), ("music", "shuffle my playlist"),
    ("music", "play {artist} no i mean {artist}"),
    ("call", "can you call {name} for me"), ("call", "i need to talk to {name}"),
    ("call", "ring {name} on their mobile"), ("call", "send {name} a text saying i will be there at {time}"),
    ("call", "tell {name} i am running {n} minutes late"), ("call", "did {name} call me today"),
    ("call", "reply to {name} with okay sounds good"), ("call", "call {name} i mean {name}"),
    ("reminder", "remind me {day} to {task}"), ("reminder", "do not let me forget to {task}"),
    ("reminder", "could you remind me to {task} when i get home"),
    ("reminder", "set a reminder for {date} to {task}"), ("reminder", "delete my reminder to {task}"),
    ("calendar", "schedule a {event} on {date} at {time}"), ("calendar", "am i free {day} at {time}"),
    ("calendar", "what time is my {event} {day}"), ("calendar", "push my {event} back by {n} minutes"),
    ("calendar", "book a {event} with {name} {day}"), ("calendar", "what do i have on {date}"),
    ("navigation", "how long will it take to get to {place}"), ("navigation", "give me directions to {place}"),
    ("navigation", "how is the traffic to {place} right now"), ("navigation", "how far is {city} from here"),
    ("navigation", "find a coffee shop near {place}"), ("navigation", "when does the next train to {city} leave"),
    ("navigation", "what time does {place} open {day}"),
    ("question", "i was wondering {question}"), ("question", "do you know {question}"),
    ("question", "what is {big} plus {n}"), ("question", "what is {n} times {n}"),
    ("question", "how many days until {date}"), ("question", "what day of the week is {date}"),
    ("misc", "never mind"), ("misc", "thank you"), ("misc", "what can you do"), ("misc", "repeat that please"),
    ("misc", "the wifi password is {code}"), ("misc", "spell {city} for me"),
    ("misc", "convert {big} dollars to euros"), ("misc", "flip a coin"),
    ("chat", "i would like to plan a trip to {city} in {month} can you check the weather and remind me to {task}"),
    ("chat", "so we are having people over {day} could you add {items} to the shopping list"),
    ("chat", "hmm i am not sure maybe play some {genre} or actually {artist} would be nice"),
    ("chat", "before i forget could you remind me to {task} and also to {task} {day}"),
    ("chat", "it is getting late so please turn off the {device} and lock the front door"),
    ("chat", "my {event} was moved to {date} at {time} can you update my calendar"),
    ("chat", "when you get a chance could you tell me how long it takes to get to {place}"),
    ("chat", "i think i left the {device} on in the {room} could you check and turn it off"),
]
TEMPLATES = [Template(d, t) for d, t in _T]
# Held out for text-only use (language models, truncation repair): every fifth template, a fixed rule.
HELD_OUT_TEMPLATES = TEMPLATES[4::5]
AUDIO_TEMPLATES = [t for i, t in enumerate(TEMPLATES) if i % 5 != 4]
FILLERS = ["um", "uh", "er", "hmm"]


def vocabulary() -> list[str]:
    """Every word the templates and slot values can produce (pronunciation look-ups, tokenizers)."""
    words = {w for t in TEMPLATES for w in re.sub(r"\{\w+\}", " ", t.text).split()}
    lists = [ROOMS, DEVICES, CITIES, NAMES, ITEMS, ARTISTS, GENRES, DAYS, TASKS, EVENTS, QUESTIONS, UNITS, ONES,
             TEENS, TENS, MONTHS, ORDINALS, PLACES, FILLERS, ["hundred", "quarter", "past", "in", "the", "morning",
                                                               "evening", "a", "m", "p", "and", "of", "on"]]
    for xs in lists:
        for x in xs:
            words.update(x.split())
    return sorted(words)


def sample_text(rng: np.random.Generator, templates: list[Template] = AUDIO_TEMPLATES) -> tuple[Template, str]:
    """One template and its filled text (with pause candidates still marked)."""
    t = templates[int(rng.integers(len(templates)))]
    return t, t.fill(rng)


def plain(text: str) -> str:
    """The spoken words only: pause candidates removed, whitespace normalised."""
    return " ".join(w for w in text.split() if not w.startswith("<"))
