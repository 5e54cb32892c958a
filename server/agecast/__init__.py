"""agecast: a real-time on-set de-aging monitor.

The path of a frame: source → detect → track → align → infer → paste back → compose → output.
Each stage lives in the room named after it (``sources``, ``faces``, ``inference``,
``identities``, ``compose``, ``pipeline``, ``stream``).
"""

__version__ = "0.1.0"
