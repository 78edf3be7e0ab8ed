"""Starting the "embedding" text path from pretrained word vectors (GloVe and kin).

The "embedding" text path (`config.text_path="embedding"`) looks the data's token ids
up in a trainable table, `model.word_embedding` [vocab_size, word_embedding_dim]. With
`config.word_vectors` (a text file of vectors) and `config.word_vectors_vocab` (the
vocabulary naming each id) the table starts from those vectors instead of random ones:

- `read_vocab(path)`: the tokens of a vocabulary file, one per line, line i = id i
  (BERT's `vocab.txt` layout, which MOSI/MOSEI's and SIMS's token ids follow).
- `load_word_vectors(vectors_path, vocab_path, dim, vocab_size, base=None)`:
  (matrix [vocab_size, dim] float32, coverage), coverage being the fraction of the
  table's rows that found a vector. Rows without one come from `base` (zeros without).
- `apply_word_vectors(model, config)`: the above with the model's current (random)
  table as `base`, written into the model; returns the coverage. The training protocol
  calls it right after building a model (`pipelines.protocol.build_compiled_model`).

The vectors file is GloVe's text format, read as plain UTF-8 text line by line (never
unpickled, never held whole in memory): one `token v1 ... vD` row per line, fields
separated by spaces or tabs. Blank lines are skipped, and so is a word2vec header line
("N D", two integers, first line only; its D must be `dim`). Only the rows of tokens
the vocabulary asks for are parsed into numbers and kept, so a multi-gigabyte file
costs memory in proportion to the vocabulary. A row whose width is not `dim`, a value
that is not a finite number, or undecodable text is a `WordVectorsError` (a
ValueError) naming the file and the line. A few rows of glove.840B have a token with
spaces in it; such a row (non-numeric fields before its last `dim` values) is skipped,
as no vocabulary token contains whitespace. When a token has several rows, the first
one counts. The rows last read are kept in memory (keyed by the file's path, size and
modification time), so the warm-up model and the main model of one run read the file
once.

Each id's token is looked up as it is, then lowercased, then, for a WordPiece
continuation token "##x", as "x" and lowercased "x": the first that has a row wins
(an exact row beats a lowercased one wherever it sits in the file). Special tokens
("[PAD]", "[CLS]", "[unused7]") usually find no row and keep their random start.

Example:
    >>> # matrix, coverage = load_word_vectors("glove.840B.300d.txt", "vocab.txt",
    >>> #                                      dim=300, vocab_size=30522)
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


# Fields are separated by ASCII spaces or tabs only: a token may be any other character
# (glove.840B has rows for non-breaking and ideographic spaces).
_FIELD_SEPARATOR = re.compile(r"[ \t]+")


class WordVectorsError(ValueError):
    """A word-vectors or vocabulary file that cannot be used, naming file and line."""


def _where(path: str, line: Optional[int] = None) -> str:
    return f"{path}, line {line}" if line is not None else str(path)


def read_vocab(path: str) -> List[str]:
    """The tokens of the vocabulary file `path`, in id order (line i holds id i).

    Only the line ending is removed, so every line, a blank one included, is one id.
    """
    path = os.path.expanduser(str(path))
    tokens: List[str] = []
    try:
        with open(path, "r", encoding="utf-8", newline="") as handle:
            for line in handle:
                tokens.append(line.rstrip("\r\n"))
    except FileNotFoundError as err:
        raise WordVectorsError(f"{_where(path)}: vocabulary file not found") from err
    except UnicodeDecodeError as err:
        raise WordVectorsError(
            f"{_where(path, len(tokens) + 1)}: not UTF-8 text ({err.reason})") from err
    except OSError as err:
        raise WordVectorsError(f"{_where(path)}: cannot read: {err}") from err
    if not tokens:
        raise WordVectorsError(f"{_where(path)}: the vocabulary file is empty")
    return tokens


def _candidates(token: str) -> List[str]:
    """The spellings looked up for `token`, in order of preference, without repeats."""
    spellings = [token, token.lower()]
    if token.startswith("##") and len(token) > 2:
        spellings += [token[2:], token[2:].lower()]
    out: List[str] = []
    for spelling in spellings:
        if spelling and spelling not in out:
            out.append(spelling)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# The last file read: (path, mtime, size, dim, wanted) -> its rows. A run with the
# key-modality warm-up builds two models from the same file; it is read once.
_LAST_READ: Dict[tuple, Dict[str, np.ndarray]] = {}


def _cached_stream_vectors(path: str, dim: int, wanted: frozenset) -> Dict[str, np.ndarray]:
    try:
        stat = os.stat(path)
    except OSError:
        return _stream_vectors(path, dim, wanted)  # raises the clear error
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size, dim, wanted)
    if key not in _LAST_READ:
        rows = _stream_vectors(path, dim, wanted)
        _LAST_READ.clear()
        _LAST_READ[key] = rows
    return _LAST_READ[key]


def _stream_vectors(path: str, dim: int, wanted: frozenset) -> Dict[str, np.ndarray]:
    """{token: vector} for the tokens of `wanted` that have a row in `path`."""
    found: Dict[str, np.ndarray] = {}
    number = 0
    seen_data = False
    try:
        with open(path, "r", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                stripped = line.strip(" \t\r\n")
                if not stripped:
                    continue
                parts = _FIELD_SEPARATOR.split(stripped)
                if not seen_data:
                    seen_data = True
                    if (len(parts) == 2 and dim != 1
                            and all(p.isascii() and p.isdigit() for p in parts)):
                        if int(parts[1]) != dim:
                            raise WordVectorsError(
                                f"{_where(path, number)}: the header says the vectors have "
                                f"width {parts[1]}; word_embedding_dim is {dim}")
                        continue
                width = len(parts) - 1
                if width != dim:
                    if width > dim and not all(_is_number(p) for p in parts[1:-dim]):
                        continue  # a token with spaces in it (glove.840B): never wanted
                    raise WordVectorsError(
                        f"{_where(path, number)}: a row of {width} values after its "
                        f"token; word_embedding_dim is {dim} (expected 'token v1 ... v{dim}')")
                token = parts[0]
                if token not in wanted or token in found:
                    continue
                try:
                    vector = np.array([float(p) for p in parts[1:]], dtype=np.float32)
                except ValueError as err:
                    raise WordVectorsError(
                        f"{_where(path, number)}: the row of {token!r} holds a value that "
                        f"is not a number ({err})") from err
                if not np.all(np.isfinite(vector)):
                    raise WordVectorsError(
                        f"{_where(path, number)}: the row of {token!r} holds a value that "
                        "is not finite")
                found[token] = vector
    except FileNotFoundError as err:
        raise WordVectorsError(f"{_where(path)}: word-vectors file not found") from err
    except UnicodeDecodeError as err:
        raise WordVectorsError(
            f"{_where(path, number + 1)}: not UTF-8 text ({err.reason})") from err
    except IsADirectoryError as err:
        raise WordVectorsError(f"{_where(path)}: is a directory, not a file") from err
    return found


def load_word_vectors(
    vectors_path: str,
    vocab_path: str,
    dim: int,
    vocab_size: Optional[int] = None,
    base: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, float]:
    """(matrix, coverage): row i of `matrix` [vocab_size, dim] float32 is the vector of
    id i's token (module docstring for the lookup) or, without one, row i of `base`
    (zeros when `base` is None); `coverage` is the fraction of the `vocab_size` rows that
    found a vector. `vocab_size` None: the vocabulary's length. Ids past the end of a
    shorter vocabulary have no token and count as not covered.

    Raises:
        WordVectorsError: a missing or malformed file (named, with the line), a
            vocabulary longer than the table, or a `base` of the wrong shape.
    """
    vectors_path = os.path.expanduser(str(vectors_path))
    vocab_path = os.path.expanduser(str(vocab_path))
    dim = int(dim)
    if dim <= 0:
        raise WordVectorsError(f"dim={dim} must be positive")
    tokens = read_vocab(vocab_path)
    rows = len(tokens) if vocab_size is None else int(vocab_size)
    if len(tokens) > rows:
        raise WordVectorsError(
            f"{_where(vocab_path)}: {len(tokens)} tokens for a table of vocab_size={rows} "
            "rows; the vocabulary must not name ids the table lacks")
    if base is None:
        matrix = np.zeros((rows, dim), dtype=np.float32)
    else:
        matrix = np.array(base, dtype=np.float32, copy=True)
        if matrix.shape != (rows, dim):
            raise WordVectorsError(
                f"base has shape {matrix.shape}; the table is {(rows, dim)}")
    spellings = [_candidates(token) for token in tokens]
    wanted = frozenset(s for candidates in spellings for s in candidates)
    vectors = _cached_stream_vectors(vectors_path, dim, wanted)
    covered = 0
    for index, candidates in enumerate(spellings):
        for spelling in candidates:
            vector = vectors.get(spelling)
            if vector is not None:
                matrix[index] = vector
                covered += 1
                break
    return matrix, covered / rows


def find_word_embedding(model):
    """The "embedding" text path's table layer of `model` (a `MultimodalModel`)."""
    layer = getattr(model, "word_embedding", None)
    if layer is None:
        raise WordVectorsError(
            f"{type(model).__name__} has no word-embedding table: word_vectors need "
            "text_path='embedding' and the text modality")
    return layer


def apply_word_vectors(model, config) -> float:
    """Starts `model`'s word-embedding table from `config.word_vectors` (rows without a
    vector keep their current values) and returns the coverage."""
    layer = find_word_embedding(model)
    (table,) = layer.get_weights()
    matrix, coverage = load_word_vectors(
        config.word_vectors, config.word_vectors_vocab, table.shape[1],
        vocab_size=table.shape[0], base=table,
    )
    layer.set_weights([matrix])
    return coverage


__all__: Sequence[str] = ("WordVectorsError", "read_vocab", "load_word_vectors",
                          "apply_word_vectors", "find_word_embedding")
