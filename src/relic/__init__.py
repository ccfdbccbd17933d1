"""RELIC: an open implementation of the interactive video world model with long-horizon spatial memory.

Layers (no import runs back down this stack):
  camera, config, errors, fileio,      the floor
  options, precision, video
  data, memory, models, world          above it
  runtime                              StreamingSession, the one engine API (no I/O)
  training, eval, serve                clients of the engine
  cli                                  on top
"""

__version__ = "0.1.0"
