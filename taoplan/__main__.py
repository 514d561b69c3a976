from taoplan.cli import main

main()
