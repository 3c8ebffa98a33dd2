"""The template catalog: register WeChat subscribe-message templates, keep them in step with WeChat,
describe their keywords, preview the card a user will see, and send tests.

``services`` holds the catalog's actions, ``sync`` the comparison with ``gettemplate``, ``library``
the public template library, ``preview`` the card, ``views`` the pages and ``cli`` ``flask sync-templates``.
Later send paths ask :func:`dashboard.catalog.services.template_usable` before they send.
"""
