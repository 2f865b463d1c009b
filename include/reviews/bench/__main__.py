"""`python -m reviews.bench`: run every registered benchmark (see reviews.bench)."""
import sys

from reviews.bench import main

sys.exit(main())
