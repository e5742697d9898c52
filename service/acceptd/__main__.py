from acceptd.cli.main import main

main()
