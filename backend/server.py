"""``python -m backend.server``: the entry point the Blender add-on starts (see ``backend.serving.server``)."""

import sys

from backend.serving.server import main

if __name__ == "__main__":
    sys.exit(main())
