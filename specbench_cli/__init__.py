"""specbench: measure speculative decoding drafters and acceptance strategies.

Importing the package must stay cheap: no torch import here.
"""

__version__ = "0.1.0"
