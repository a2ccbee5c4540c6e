"""Count sources that compute a generator's grouped counts where the table lives (no Django).

See :mod:`synth_engine.generators.counts` for the questions a source answers; the modules here
answer them with the engine's own query language, so only counts leave it.
"""
