import sys

from expression_portrait.cli import main

sys.exit(main())
