"""The next-best-action library: offers and messages as data, edited through the admin API.

The engine reads active offers as :class:`server.engine.OfferRule` and picks
(see :mod:`server.engine.offers`); nothing here decides who gets what.
"""
