"""Stage 2, per-clip features (rules `extract_text`, `extract_audio`, `extract_visual`; command
`aemt extract`): one module per extractor (`text`, `audio`, `visual` with its `landmarker`), the shared
`base` class, PyAV decoding (`media`) and the resumable shard `runner`."""
