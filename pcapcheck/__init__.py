"""pcapcheck: does every TCP connection in a capture open and close the way RFC 9293 says?

Data flow, one stage per module or package, none importing a later one:
capture -> segments -> connections -> replay -> checks (findings) -> reports.
"""

__version__ = "0.1.0"
