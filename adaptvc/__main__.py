from adaptvc.cli.main import main

main()
