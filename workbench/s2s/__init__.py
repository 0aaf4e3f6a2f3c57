"""Speech-to-speech: one LM over one learned encoding for the user's speech and the assistant's (issue 18).

``dialogues``: the spoken dialogues it learns from, whose requests' meanings are known by construction, and whose
answers follow the user's mood.
"""
