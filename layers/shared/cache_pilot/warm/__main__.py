from cache_pilot.warm.cli import main

raise SystemExit(main())
