from kai_shell.cli import main

main()
