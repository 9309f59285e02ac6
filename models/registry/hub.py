"""Fetch one pinned file from a Hugging Face repo; the store then checks and places it.

huggingface_hub does the transfer: redirects to the CDN, Xet storage, auth for gated repos,
retries that resume a dropped connection with a Range request, and HF_ENDPOINT for mirrors.
This is the only place in the registry that touches the network, and only on explicit install
(with pins.py's `models pin`): the hub client is offline everywhere else (offline.py).
"""

from pathlib import Path

from tqdm import tqdm

from .catalog import HubFile
from .errors import DownloadFailed
from .hashing import OnBytes
from .offline import online


def download(file: HubFile, staging_dir: Path, endpoint: str | None = None, on_bytes: OnBytes | None = None) -> Path:
    """Download `file` into `staging_dir` and return its path there.

    `endpoint` overrides HF_ENDPOINT. With `on_bytes`, progress goes there instead of to the
    client's own progress bar.
    """
    # Imported here: the hub client is slow to import and only installs need it.
    from huggingface_hub import hf_hub_download

    try:
        with online():  # the user asked for this install: the one time the hub may be reached
            path = hf_hub_download(
                repo_id=file.repo_id,
                filename=file.filename,
                revision=file.revision,
                local_dir=staging_dir,
                endpoint=endpoint,
                tqdm_class=_reporting_bar(on_bytes) if on_bytes else None,
            )
    except _ProgressRaised as raised:
        raise raised.error from None
    except Exception as error:
        # The client raises HTTP, connection, OS and validation errors of many types; the user
        # needs one line, and the cause stays chained for a debugger.
        raise DownloadFailed(f"{file.filename} from {file.repo_id}@{file.revision[:12]}", str(error)) from error
    return Path(path)


def _reporting_bar(on_bytes: OnBytes) -> type[tqdm]:
    """A tqdm class that draws nothing and reports the running byte count to `on_bytes`.

    Xet transfers drive two bars (bytes fetched and bytes written) and a restarted transfer
    counts down; reporting only a new highest count keeps the caller's progress monotonic.
    """
    highest = 0

    class ReportingBar(tqdm):
        def __init__(self, *args, **kwargs) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool:
            nonlocal highest
            # A disabled tqdm does not count; the client reads `n` back, so keep it right.
            self.n += n or 0
            if self.n > highest:
                highest = int(self.n)
                try:
                    on_bytes(highest)
                except Exception as error:
                    raise _ProgressRaised(error) from error
            return True

    return ReportingBar


class _ProgressRaised(BaseException):
    """Carries an exception from the caller's progress callback (a GUI's cancel, say) past the
    client's `except Exception` handlers, so the caller gets it back as is, not as a failed
    download."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error
