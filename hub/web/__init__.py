"""The hub's HTTP routes for stations: sync (``sync``), photos and scans (``blobs``), enrolment and the
hub's key history (``enrolment``), with the signed request header they share (``signed_request``), how
they refuse (``errors``) and the one-line log of requests the HTTP parser refuses (``http_log``).

Nothing here needs a login: every request is signed by a station, or (enrolment) proves a token, and
every answer a station trusts is signed by the hub. The factory in ``hub/app.py`` mounts them.
"""
