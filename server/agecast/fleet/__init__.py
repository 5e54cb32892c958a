"""Several agecast nodes, one view (docs/fleet.md).

Each node lists the others in its ``fleet`` setting and shares one key with them
(:mod:`~agecast.fleet.signing`). A node asks its peers for their cameras in the background
(:mod:`~agecast.fleet.peers`, over :mod:`~agecast.fleet.client`) and signs short-lived, one-time
tickets (:mod:`~agecast.fleet.tickets`) that carry a signed-in user to another node, which makes
its own session from one and keeps asking the issuing node whether the link behind it holds.
"""
