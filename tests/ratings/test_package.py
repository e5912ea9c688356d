"""The rating package loads its parts on first use: every public name must stay the
function or class it names, whichever of its modules were imported first."""

import importlib
import pkgutil
import types

import arena.ratings as ratings


def test_every_public_name_is_what_it_names_after_every_module_is_loaded():
    # given every module of the package imported (a submodule import binds its name on the package)
    for info in pkgutil.iter_modules(ratings.__path__):
        importlib.import_module(f"arena.ratings.{info.name}")
    # then no public name is shadowed by a module of the same name
    assert [name for name in ratings.__all__ if isinstance(getattr(ratings, name), types.ModuleType)] == []
