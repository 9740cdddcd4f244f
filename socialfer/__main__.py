from socialfer.cli import main

main()
