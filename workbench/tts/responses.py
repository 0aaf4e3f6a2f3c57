"""The assistant's responses to the corpus's requests, each with the delivery it deserves, written as stage
directions: the tagger's training data (plain text in, tagged text out) and the large TTS's text.

Delivery conventions (the issue's): questions back to the user are curious, good news is excited, apologies and
failures are apologetic, jokes get a pause before the punchline and a laugh after it, warnings are serious,
bedtime things are calm or whispered, a hedge starts with a filler. Slots are filled from the request templates'
own slot values (data.templates.SLOTS). Every fifth template is held out, by a fixed rule, for test.
"""
from __future__ import annotations

import re

import numpy as np

from ..data.templates import SLOTS
from .styles import TAG

_R = [
    # smart home
    ("home", "Okay, the {room} {device} is on."), ("home", "Done. I turned off the {device} in the {room}."),
    ("home", "[curious] Which room do you mean?"), ("home", "[apologetic] Sorry, I can't reach the {device} right now."),
    ("home", "[calm] Dimming the {room} lights to {pct} percent."), ("home", "Setting the {room} to {temp} degrees."),
    ("home", "[serious] The {device} in the {room} is still on."), ("home", "[curious] Do you want me to turn off the {device} too?"),
    ("home", "[excited] Good news! The {device} is already off."), ("home", "[um] I think the {device} is on. [curious] Should I check?"),
    # timers and alarms
    ("timer", "Okay, {n} {unit}, starting now."), ("timer", "[excited] Your timer is done!"),
    ("timer", "[curious] How long should the timer be?"), ("timer", "There are {n} {unit} left on your timer."),
    ("timer", "[apologetic] Sorry, there is no timer to cancel."), ("alarm", "Your alarm is set for {time} {day}."),
    ("alarm", "[calm] Good night. I will wake you at {time}."), ("alarm", "[whisper] Alarm set for {time}. Sleep well."),
    ("alarm", "[curious] Did you mean {time} in the morning?"), ("alarm", "[excited] Good morning! It is {time}."),
    # lists
    ("list", "I added {item} to your shopping list."), ("list", "[excited] Done! {item} and {item} are on the list."),
    ("list", "[curious] Do you want me to add {item} as well?"), ("list", "[apologetic] Sorry, {item} isn't on your list."),
    ("list", "Your list has {item}, {item} and {item}."), ("list", "[um] You already have {item} on the list."),
    # weather
    ("weather", "[excited] It will be sunny in {city} {day}!"), ("weather", "It will rain in {city} {day}, so take an umbrella."),
    ("weather", "[serious] There is a storm warning for {city} {day}."), ("weather", "It is {temp} degrees in {city} right now."),
    ("weather", "[curious] Are you asking about {city} or somewhere else?"), ("weather", "[calm] A cool and quiet evening, {temp} degrees."),
    ("weather", "[apologetic] Sorry, I don't have the forecast for {city} yet."), ("weather", "[excited] Snow {day} in {city}!"),
    # music
    ("music", "Playing {genre}."), ("music", "[excited] Here is {artist}!"), ("music", "[curious] Which song would you like?"),
    ("music", "[apologetic] Sorry, I couldn't find anything by {artist}."), ("music", "[calm] Playing {genre} in the {room}."),
    ("music", "[um] This might be {artist}, but I am not sure."), ("music", "Volume set to {pct} percent."),
    # calls and messages
    ("call", "Calling {name}."), ("call", "[curious] Should I call {name} on speaker?"),
    ("call", "[apologetic] Sorry, {name} didn't answer."), ("call", "Message sent to {name}."),
    ("call", "[excited] You have a new message from {name}!"), ("call", "[serious] You missed a call from {name}."),
    ("call", "[curious] What should the message to {name} say?"), ("call", "[um] I found two people called {name}. [curious] Which one?"),
    # reminders and calendar
    ("reminder", "Okay, I'll remind you to {task} {day}."), ("reminder", "[serious] Don't forget to {task} at {time}."),
    ("reminder", "[curious] When should I remind you?"), ("reminder", "[apologetic] Sorry, I couldn't find that reminder."),
    ("calendar", "Your {event} is {day} at {time}."), ("calendar", "[excited] You are free all day {day}!"),
    ("calendar", "[curious] Should I move your {event} to {day}?"), ("calendar", "[serious] Your {event} starts in {n} minutes."),
    ("calendar", "[apologetic] Sorry, I couldn't move your {event}."), ("calendar", "[um] You have a {event} {day}, I think at {time}."),
    # navigation and questions
    ("navigation", "It takes about {n} minutes to get to {place}."), ("navigation", "[serious] There is heavy traffic on the way to {place}."),
    ("navigation", "[curious] Do you want directions to {place}?"), ("navigation", "[excited] Good news, the roads to {place} are clear!"),
    ("question", "[um] That's a good question. [curious] Do you want me to look it up?"), ("question", "[apologetic] Sorry, I don't know that one."),
    ("question", "[excited] That's {big}!"), ("question", "The answer is {big}."),
    # jokes and chat
    ("misc", "Why did the {device} blush? [pause] It saw the {device} naked. [laugh]"),
    ("misc", "What do you call a sleeping bull? [pause] A bulldozer. [laugh]"),
    ("misc", "Why don't eggs tell jokes? [pause] They would crack each other up. [laugh]"),
    ("misc", "I told my {device} a joke. [pause] It didn't get it. [laugh]"),
    ("misc", "What do you call fake spaghetti? [pause] An impasta. [laugh]"),
    ("misc", "[excited] You're welcome!"), ("misc", "[curious] What else can I do for you?"),
    ("misc", "[apologetic] Sorry, I didn't catch that. [um] Could you say it again?"),
    ("misc", "[calm] No problem, take your time."), ("misc", "[whisper] Okay, I will be quiet now."),
    ("chat", "[excited] {city} sounds lovely! [curious] When are you going?"), ("chat", "[um] Let me think. [pause] Maybe {genre}?"),
    ("chat", "[serious] Please remember to {task} before {time}."), ("chat", "[calm] Everything is set for {day}. [pause] Anything else?"),
]
TEMPLATES = [(d, t) for d, t in _R]
HELD_OUT = TEMPLATES[4::5]
TRAIN = [t for i, t in enumerate(TEMPLATES) if i % 5 != 4]


def untag(tagged: str) -> str:
    """The text as a response generator writes it, before the tagger: directions and fillers removed."""
    return " ".join(TAG.sub(" ", tagged).split())


def fill(template: str, rng: np.random.Generator) -> str:
    """A template with its slots filled; the first letter of each sentence upper-cased."""
    text = re.sub(r"\{(\w+)\}", lambda m: SLOTS[m.group(1)](rng), template)
    text = " ".join(w for w in text.split() if not w.startswith("<"))     # pause candidates of list slots
    return re.sub(r"(^|[.!?]\s+|\]\s*)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def sample(rng: np.random.Generator, held_out: bool = False) -> tuple[str, str, str]:
    """(domain, plain response, tagged response) from the training or held-out templates."""
    pool = HELD_OUT if held_out else TRAIN
    domain, t = pool[int(rng.integers(len(pool)))]
    tagged = fill(t, rng)
    return domain, untag(tagged), tagged
