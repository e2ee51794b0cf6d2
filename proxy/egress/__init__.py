"""Egress guard: where airlock may open connections (issue #11).

Outbound connections go only to the configured upstream origins, the origins an admin lists
in ``[egress] allow``, and public addresses.  ``addresses`` classifies an IP address (pure),
``origins`` parses and matches origins (pure, used by settings), ``guard`` holds the rules of
one upstream session and logs every refusal as a decision event, ``connector`` enforces them
on the addresses aiohttp actually connects to, and ``redirects`` caps and checks the redirect
chains the upstream clients follow themselves.
"""
