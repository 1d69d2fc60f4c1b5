"""Passwords out of URLs before they are shown: in configuration errors and log lines."""

from __future__ import annotations

import re

# The password of each ``user:password@`` in a text, URL-shaped or not: after
# ``//``, a comma or semicolon (several addresses), or at the start (a scheme
# forgotten). Greedy up to the last ``@`` before a ``/``: a malformed value
# (an unencoded ``@`` or ``,`` in the password) is masked too much, never too little.
_PASSWORD = re.compile(r"((?:^|//|[,;])\s*[^:@/,;\s]*):[^/]*@")


def mask_passwords(text: str) -> str:
    """``text`` (one URL, several comma-separated, or a message quoting them)
    with every URL password replaced by ``***``; the user and host stay."""
    return _PASSWORD.sub(r"\1:***@", text)
