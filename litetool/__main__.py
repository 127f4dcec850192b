from litetool.cli import main

raise SystemExit(main())
