"""Vitrine: the open backend of a retailer's in-store companion.

``vitrine.contracts`` holds everything the processes share (ids, topics, facts,
events, store layouts); ``vitrine.runtime`` the operational plumbing every
process uses (settings base, logging, metrics and health); ``vitrine.cli`` is
the composition root that mounts each package's commands.
"""

__version__ = "0.1.0"
