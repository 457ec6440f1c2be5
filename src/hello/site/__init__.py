"""The bundled site: ``web`` (the Quart root app), ``legacy`` (a Flask app under /legacy) and
``clock`` (the scheduled task behind /time)."""
