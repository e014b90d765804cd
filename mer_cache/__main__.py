"""``python -m mer_cache ...`` (also what ``torchrun -m mer_cache extract ...`` runs)."""

from mer_cache.cli import main

if __name__ == "__main__":
    main()
