from cargoctl.main import main

main()
