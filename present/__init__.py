"""How Sanji shows things to people: the web pages' shared pieces (``webui``, with the macros in
``templates`` and the stylesheet in ``static``) and the commands' one way of reporting (``output``).

Above ``replica/`` (storage), below ``node/`` and ``hub/``: both sides use it, and it imports neither.
"""
