from specbench_cli.cli import main

main()
