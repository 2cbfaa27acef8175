"""LFW pair files.

Two header forms are accepted:

* ``F<TAB>N`` (``pairs.txt``, View 2): F folds, each N matched then N mismatched pairs.
* ``N`` (``pairsDevTest.txt``, ``pairsDevTrain.txt``, View 1): one set of N matched then N
  mismatched pairs. There are no folds; for 10-fold cross-validation the matched and the
  mismatched lines are each cut into 10 consecutive chunks (the files are sorted by name, so
  folds mostly hold different people), and fold k is chunk k of both.

Pair lines: matched ``name<TAB>i<TAB>j``; mismatched ``name1<TAB>i<TAB>name2<TAB>j``; the image
is ``name/name_%04d.jpg`` under the dataset folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceledger.errors import ValidationError

SINGLE_SET_FOLDS = 10


@dataclass(frozen=True)
class Pair:
    a: str  # image path relative to the dataset folder
    b: str
    same: bool
    fold: int


@dataclass(frozen=True)
class PairSet:
    pairs: list[Pair]
    folds: int
    per_fold: int  # matched (= mismatched) pairs per fold in the file; N for a single set
    single_set: bool  # header was one number: folds are made for cross-validation
    source: str

    @property
    def protocol(self) -> str:
        if self.single_set:
            return (f"{self.source}: one set of {self.per_fold} matched + {self.per_fold} "
                    f"mismatched pairs (no folds in the file); 10-fold cross-validation over "
                    f"consecutive chunks of that set")
        return (f"{self.source}: {self.folds} folds x ({self.per_fold} matched + "
                f"{self.per_fold} mismatched pairs); threshold chosen on {self.folds - 1} folds, "
                f"tested on the remaining one")

    def images(self) -> list[str]:
        return sorted({p.a for p in self.pairs} | {p.b for p in self.pairs})


def image_name(name: str, number: int) -> str:
    return f"{name}/{name}_{number:04d}.jpg"


def _number(tok: str, where: str) -> int:
    try:
        value = int(tok)
    except ValueError:
        raise ValidationError(f"{where}: image number {tok!r} is not an integer") from None
    if value < 1:
        raise ValidationError(f"{where}: image number {value} must be 1 or more")
    return value


def _parse_line(line: str, where: str, matched: bool, fold: int) -> Pair:
    tok = line.split("\t") if "\t" in line else line.split()
    tok = [t.strip() for t in tok]
    if matched:
        if len(tok) != 3:
            raise ValidationError(
                f"{where}: expected a matched pair 'name<TAB>i<TAB>j' (3 fields), got "
                f"{len(tok)} field(s): {line!r}")
        name, i, j = tok
        return Pair(image_name(name, _number(i, where)), image_name(name, _number(j, where)),
                    True, fold)
    if len(tok) != 4:
        raise ValidationError(
            f"{where}: expected a mismatched pair 'name1<TAB>i<TAB>name2<TAB>j' (4 fields), "
            f"got {len(tok)} field(s): {line!r}")
    n1, i, n2, j = tok
    if n1 == n2:
        raise ValidationError(f"{where}: a mismatched pair names the same person twice: {line!r}")
    return Pair(image_name(n1, _number(i, where)), image_name(n2, _number(j, where)), False, fold)


def parse_pairs(text: str, source: str = "pairs") -> PairSet:
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValidationError(f"{source}: the pairs file is empty")
    head = lines[0].split()
    try:
        numbers = [int(h) for h in head]
    except ValueError:
        numbers = []
    if len(numbers) == 2 and numbers[0] >= 1 and numbers[1] >= 1:
        folds, per_fold, single = numbers[0], numbers[1], False
    elif len(numbers) == 1 and numbers[0] >= 1:
        folds, per_fold, single = 1, numbers[0], True
    else:
        raise ValidationError(
            f"{source} line 1: expected a header 'FOLDS<TAB>PAIRS_PER_FOLD' (e.g. '10\t300') or "
            f"'PAIRS' (e.g. '500'), got {lines[0]!r}")
    body = lines[1:]
    expected = folds * 2 * per_fold
    if len(body) != expected:
        raise ValidationError(
            f"{source}: the header promises {expected} pair lines, the file has {len(body)}")
    pairs: list[Pair] = []
    for f in range(folds):
        for k in range(2 * per_fold):
            lineno = 2 + f * 2 * per_fold + k
            matched = k < per_fold
            if single:
                chunk = (k if matched else k - per_fold) * SINGLE_SET_FOLDS // per_fold
                fold = chunk
            else:
                fold = f
            line = body[lineno - 2]
            if not line.strip():
                raise ValidationError(f"{source} line {lineno}: empty line inside the pairs")
            pairs.append(_parse_line(line, f"{source} line {lineno}", matched, fold))
    return PairSet(pairs, SINGLE_SET_FOLDS if single else folds, per_fold, single, source)


def load_pairs(path: Path) -> PairSet:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read pairs file {path}: {exc.strerror}") from None
    return parse_pairs(text, path.name)
