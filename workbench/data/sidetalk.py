"""Side talk: speech in the room that is not meant for the device (look-to-talk's negatives).

Four kinds, labelled ``directed: false`` in the corpus (requests stay ``directed: true``):
- ``remark``: conversation ("i think it is going to rain later");
- ``to a person``: a question or answer to someone by name ("{name} are you coming to dinner");
- ``domain mention``: the assistant's own domain, not a request ("did you turn off the {device}",
  "the timer went off earlier");
- ``command to a person``: the hard negatives, phrased like requests but meant for someone in the room
  ("{name} turn off the {device} please", "can you grab the {item} from the {room}").

Every fourth template is held out of training (dev and test speak only those), so a lexical model is measured on
side talk it never read, as the recogniser is on held-out request templates.
"""
from __future__ import annotations

from .templates import Template

_S = [
    ("remark", "i think it is going to rain later"), ("remark", "that movie was really good"),
    ("remark", "we should leave in a few minutes"), ("remark", "i am so tired today"),
    ("remark", "this soup needs more salt"), ("remark", "the traffic was terrible this morning"),
    ("remark", "i cannot believe it is already {month}"), ("remark", "my sister is visiting {day}"),
    ("remark", "the kids were so loud at dinner"), ("remark", "i love this song actually"),
    ("remark", "work has been crazy this week"), ("remark", "we need a bigger table"),
    ("remark", "that was the best pizza i have had in a while"), ("remark", "i forgot my keys at the office"),
    ("remark", "the neighbours are having a party again"), ("remark", "it smells like {item} in here"),
    ("to a person", "{name} are you coming to dinner"), ("to a person", "{name} did you feed the cat"),
    ("to a person", "hey {name} how was school"), ("to a person", "{name} where did you put my glasses"),
    ("to a person", "are you ready to go {name}"), ("to a person", "{name} what do you want for lunch"),
    ("to a person", "{name} can you hear me"), ("to a person", "how was your trip to {city} {name}"),
    ("to a person", "{name} do you know where the charger is"), ("to a person", "did you call {name} back"),
    ("to a person", "{name} what time is your train"), ("to a person", "yes {name} i will be there soon"),
    ("domain mention", "did you turn off the {device}"), ("domain mention", "the timer went off earlier"),
    ("domain mention", "i already added {item} to the list"), ("domain mention", "the {device} in the {room} is broken again"),
    ("domain mention", "i set an alarm for {time} yesterday"), ("domain mention", "the weather in {city} was awful last week"),
    ("domain mention", "who left the {room} lights on"), ("domain mention", "the music is too loud for the baby"),
    ("domain mention", "i think the {device} uses a lot of power"), ("domain mention", "we ran out of {item} again"),
    ("domain mention", "my {event} got moved to {day}"), ("domain mention", "i never listen to {genre}"),
    ("command to a person", "{name} turn off the {device} please"), ("command to a person", "can you grab the {item} from the {room}"),
    ("command to a person", "set the table please {name}"), ("command to a person", "call your grandma back {name}"),
    ("command to a person", "play with your brother for a bit"), ("command to a person", "turn that down {name}"),
    ("command to a person", "{name} open the window would you"), ("command to a person", "put the {item} in the fridge"),
    ("command to a person", "remind me to thank {name} later okay"), ("command to a person", "{name} check if the {device} is on"),
    ("command to a person", "add some {item} to the pot"), ("command to a person", "stop that right now {name}"),
]
SIDE_TALK_TEMPLATES = [Template(f"side talk:{kind}", text) for kind, text in _S]
# dev and test speak only these (a fixed rule, as for the request templates)
HELD_OUT_SIDE_TALK = SIDE_TALK_TEMPLATES[3::4]
TRAIN_SIDE_TALK = [t for i, t in enumerate(SIDE_TALK_TEMPLATES) if i % 4 != 3]
KINDS = ("remark", "to a person", "domain mention", "command to a person")


def kind(template: Template) -> str:
    return template.domain.split(":", 1)[1]
