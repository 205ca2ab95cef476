"""``python -m attncli`` runs the ``attn`` command."""

from attncli.entry import main

if __name__ == "__main__":
    main()
