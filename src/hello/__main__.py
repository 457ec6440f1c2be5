from hello.cli import main

raise SystemExit(main())
