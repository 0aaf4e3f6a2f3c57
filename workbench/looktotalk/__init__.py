"""Look-to-talk: is this speech meant for the device? The recogniser's own outputs (acoustic), its transcript
(lexical) and a camera's cue (visual, simulated here until recorded faces exist), fused into one decision."""
