from mlcompile.entry import main

main()
