"""The alignment templates by name, without torch: a manifest names one and is checked against
these when it is read (``agecast identity list`` reads manifests and nothing heavier). The
points themselves are in :data:`agecast.faces.align.TEMPLATES`, which checks it has these."""

TEMPLATE_NAMES = (
    "arcface_112",
    "arcface_128",
    "ffhq",
    "dfl_full_face",
    "dfl_whole_face",
    "dfl_head",
)
