"""The shopper companion page ``/phone``: the web version of the app.

Plain HTML, CSS and ES modules (:mod:`mobile_api.web.static`), no build step;
it uses the same REST routes and WebSocket as the native app
(``docs/mobile-api.md``). In ``MODE=local`` only, ``POST /phone/demo/identity``
stands in for the online store's sign-in (``docs/demo.md``).
"""
