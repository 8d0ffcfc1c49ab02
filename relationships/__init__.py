"""The shared rules engine: tells clients from customers, explains why, suggests conversions.

Pure pandas; knows nothing of Excel. The UDFs, the batch tool and the templates are thin
edges over :func:`relationships.engine.classify`.
"""

from relationships.engine import classify, classify_detailed
from relationships.rulebook import Rulebook, default_rulebook, load_rulebook

__all__ = ["Rulebook", "classify", "classify_detailed", "default_rulebook", "load_rulebook"]
__version__ = "0.1.0"
