"""Models (paper §4.1): the Wan-2.1 DiT with RELIC's action/pose conditioning, the causal VAE, the tiny
decoder, text encoders, and weights I/O.

Import the submodules directly (``from relic.models.dit import DiT``); this package imports nothing
heavy on its own so that the VAE and text modules can be used without the DiT and vice versa.
"""
