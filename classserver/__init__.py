"""A class server on one machine: several Streamlit page servers behind HAProxy, one Ray head, one store.

Start it with ``bash scripts/serve.sh`` (README: *Running it for a class*). :mod:`classserver.config`
reads ``class.toml``; :mod:`classserver.proxy` writes HAProxy's configuration;
:mod:`classserver.supervisor` starts and stops the processes.
"""
