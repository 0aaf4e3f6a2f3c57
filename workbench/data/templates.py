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
         "basement", "kids room", "guest room", "porch", "garden", "attic", "laundry room"]
DEVICES = ["lights", "lamp", "fan", "heater", "air conditioner", "tv", "radio", "speaker", "coffee machine",
           "dishwasher", "washing machine", "vacuum", "blinds", "oven", "kettle", "printer"]
CITIES = ["london", "paris", "berlin", "madrid", "rome", "boston", "chicago", "seattle", "denver", "toronto",
          "sydney", "tokyo", "dublin", "vienna", "oslo", "lisbon", "austin", "miami", "dallas", "phoenix",
          "munich", "prague", "atlanta", "houston", "portland", "glasgow", "cairo", "delhi", "seoul", "lima"]
NAMES = ["anna", "ben", "carla", "david", "emma", "frank", "grace", "henry", "isabel", "jack", "kate", "liam",
         "maria", "noah", "olivia", "peter", "rachel", "sam", "tom", "sophie", "lucy", "mark", "julia", "alex",
         "mom", "dad", "grandma", "my sister", "my brother", "the office", "the doctor", "the dentist"]
ITEMS = ["milk", "eggs", "bread", "butter", "cheese", "apples", "bananas", "coffee", "tea", "rice", "pasta",
         "tomatoes", "onions", "carrots", "chicken", "fish", "yogurt", "orange juice", "cereal", "sugar",
         "flour", "potatoes", "lemons", "garlic", "olive oil", "soap", "toothpaste", "paper towels",
         "batteries", "dog food", "honey", "salt", "pepper", "spinach", "grapes", "ice cream"]
ARTISTS = ["the beatles", "taylor swift", "miles davis", "queen", "adele", "bob marley", "coldplay", "mozart",
           "beethoven", "nina simone", "the rolling stones", "daft punk", "abba", "elvis", "bach", "radiohead"]
GENRES = ["jazz", "rock", "classical music", "pop", "hip hop", "country", "blues", "reggae", "folk music",
          "lo fi beats", "relaxing music", "workout music", "piano music", "the news", "a podcast"]
DAYS = ["today", "tomorrow", "tonight", "this weekend", "on monday", "on tuesday", "on wednesday",
        "on thursday", "on friday", "on saturday", "on sunday", "next week", "this afternoon", "this evening"]
TASKS = ["call the bank", "pay the rent", "water the plants", "take my medicine", "pick up the kids",
         "buy a birthday present", "book a table", "send the report", "feed the cat", "walk the dog",
         "check the mail", "charge my phone", "renew my passport", "clean the kitchen", "go to the gym",
         "take out the trash", "call my mother", "back up my laptop", "cancel the meeting", "order more coffee"]
EVENTS = ["dentist appointment", "team meeting", "dinner with friends", "yoga class", "doctor appointment",
          "flight to boston", "birthday party", "job interview", "parent teacher meeting", "lunch with anna"]
QUESTIONS = ["how tall is mount everest", "what is the capital of australia", "how far away is the moon",
             "who wrote romeo and juliet", "how many days are in a leap year", "what is the speed of light",
             "when does summer start", "how do you make pancakes", "what time is it in tokyo",
             "how many ounces are in a cup", "what is the population of canada", "who painted the mona lisa",
             "why is the sky blue", "how long do cats live", "what does a bee eat"]
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


SLOTS = {
    "room": lambda r: _pick(r, ROOMS), "device": lambda r: _pick(r, DEVICES), "city": lambda r: _pick(r, CITIES),
    "name": lambda r: _pick(r, NAMES), "item": lambda r: _pick(r, ITEMS), "items": _items,
    "artist": lambda r: _pick(r, ARTISTS), "genre": lambda r: _pick(r, GENRES), "day": lambda r: _pick(r, DAYS),
    "task": lambda r: _pick(r, TASKS), "event": lambda r: _pick(r, EVENTS), "question": lambda r: _pick(r, QUESTIONS),
    "n": lambda r: number_words(int(r.integers(1, 60))), "unit": lambda r: _pick(r, UNITS),
    "pct": lambda r: number_words(int(r.integers(1, 11)) * 10), "temp": lambda r: number_words(int(r.integers(16, 28))),
    "time": _time, "phone": _phone, "code": _code,
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
]
TEMPLATES = [Template(d, t) for d, t in _T]
# Held out for text-only use (language models, truncation repair): every fifth template, a fixed rule.
HELD_OUT_TEMPLATES = TEMPLATES[4::5]
AUDIO_TEMPLATES = [t for i, t in enumerate(TEMPLATES) if i % 5 != 4]
FILLERS = ["um", "uh", "er", "hmm"]


def sample_text(rng: np.random.Generator, templates: list[Template] = AUDIO_TEMPLATES) -> tuple[Template, str]:
    """One template and its filled text (with pause candidates still marked)."""
    t = templates[int(rng.integers(len(templates)))]
    return t, t.fill(rng)


def plain(text: str) -> str:
    """The spoken words only: pause candidates removed, whitespace normalised."""
    return " ".join(w for w in text.split() if not w.startswith("<"))
