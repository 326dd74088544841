"""Stage 2a: speech recognition (`asr`), transcripts and word timings of every clip, before text
extraction. `words` matches transcripts onto recognised words (no model), `recognizer` wraps
faster-whisper, `transcript` decides each clip's transcript, `runner` runs one manifest shard."""
