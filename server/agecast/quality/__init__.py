"""Picture quality, measured: ``agecast quality`` renders a clip through the pipeline and reports
how much of the plate's detail the aged face keeps, whether it is still the actor, how much it
flickers, whether an occluder stays untouched and whether the paste-back edge shows.

Rooms: :mod:`~agecast.quality.clips` (generated clips: an unseen one and one with an occluder),
:mod:`~agecast.quality.figures` (the per-face measures, on tensors),
:mod:`~agecast.quality.measure` (the run and its report), :mod:`agecast.cli.quality` (the CLI).
"""
