"""What Dockyard does by itself: outgoing webhooks today (``webhooks.py`` the rules and
the service, ``delivery.py`` the deliverer); timers, ports and the hub webhook next."""
