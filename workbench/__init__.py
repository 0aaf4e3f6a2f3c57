"""speech-workbench: the components of a voice-assistant speech stack, one room each."""
__version__ = "0.1.0"
