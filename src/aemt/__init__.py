"""aemt: multimodal sentiment analysis pipeline (raw clips -> features -> AE-MT -> metrics)."""

__version__ = "0.1.0"
