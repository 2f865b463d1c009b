"""`python -m reviews_dev.bench`: run every registered benchmark (see reviews_dev.bench)."""
import sys

from reviews_dev.bench import main

sys.exit(main())
