"""The staff dashboard (``/staff``), the analytics page (``/analytics``) and their live stream.

Plain HTML, CSS and ES modules served from :mod:`server.web.static` — no
front-end build step. The pages call the JSON API with the staff bearer token
kept in ``sessionStorage`` (``docs/demo.md``); :mod:`server.web.stream` pushes a
store's staff events, device health and dead letters as Server-Sent Events.
"""
