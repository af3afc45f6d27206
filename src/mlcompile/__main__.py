from mlcompile.cli import main

main()
