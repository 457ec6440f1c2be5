"""The ASGI stack: the app composition (``build``), built once for ``hello`` and for
``hypercorn hello.asgi:app``: access log and metrics (``observe``), lifespans, the header
limit, prefix mounts and the WSGI bridge, the plain-HTTP gate for ACME.
"""
