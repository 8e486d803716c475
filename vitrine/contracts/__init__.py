"""The contracts every Vitrine process shares, and nothing else.

Pure: no framework, no I/O (guarded by import-linter in ``pyproject.toml``).
Modules: :mod:`.ids` (typed ids, normalisation), :mod:`.topics` (the MQTT
namespace), :mod:`.facts` (gateway → server), :mod:`.events` (server →
phones/staff), :mod:`.layout` (store layouts), :mod:`.app_token` (the app's
rotating BLE id).
"""
