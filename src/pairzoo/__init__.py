"""pairzoo: base/updated neural-network pairs for update-compression research."""

from pairzoo.errors import PairzooError

__version__ = "0.1.0"
__all__ = ["PairzooError", "__version__"]
