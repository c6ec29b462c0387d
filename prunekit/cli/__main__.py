"""``python -m prunekit.cli``."""

from prunekit.cli import main

raise SystemExit(main())
