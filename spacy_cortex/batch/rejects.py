"""Input records that cannot be annotated: where they are and why."""
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Reject:
    """One bad input record: `file` (as named in the job, "<stdin>" for stdin), its
    1-based `line` (document number in a .spacy file) and the `reason`."""

    file: str
    line: int
    reason: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def as_record(self) -> dict:
        """The line of the rejects JSONL file: {file, line, reason}."""
        return asdict(self)


class RejectedRecord(Exception):
    """A bad record in a job run with strict=True; the message names file:line."""

    def __init__(self, reject: Reject):
        super().__init__(f"{reject.where}: {reject.reason}")
        self.reject = reject
