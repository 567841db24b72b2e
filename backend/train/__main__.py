import sys

from backend.train import main

sys.exit(main())
