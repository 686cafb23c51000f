import sys

if __name__ == "__main__":
    # Imported here, not above: each worker process imports this module too
    # (multiprocessing's spawn), and the daemon's modules cost it 37 MB.
    from transcriber.cli import main

    sys.exit(main())
