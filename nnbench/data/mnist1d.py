"""MNIST-1D (Greydanus 2020, "Scaling down deep learning"), generated offline.

The ``mnist1d`` package (0.0.2.post1) builds the dataset procedurally: ten
12-point templates, each example padded, stretched, scaled, translated,
noised (correlated noise off the signal, iid noise everywhere), sheared and
resampled to 40 points; the rows are shuffled, the whole set standardised,
and the first 80% is its training split, the rest its test split. This
module repeats that procedure step for step with the same legacy NumPy
stream (``RandomState(seed)``, which is what the package's
``np.random.seed`` drives), so its arrays equal the package's
``make_dataset`` output bit for bit (tests/test_mnist1d.py checks it against
the package). Nothing is downloaded: the package's ``get_dataset`` fetches a
pickle, which nnbench never does.

nnbench's validation split is carved from the package's training split (a
seeded choice of ``valid_fraction`` of its rows), never from its test split,
so the test split is exactly the package's. The splits are cached as
``.npy`` files in a managed folder of the data cache with their SHA-256
sums, checked on every load; a damaged cache is said so in one line and
generated again (generation takes about a second).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from nnbench.data.cache import ManagedFolder, cache_dir, managed_entries
from nnbench.data.fetch import say
from nnbench.data.registry import Dataset, DatasetInfo, LoadRequest, Progress, Split, register
from nnbench.errors import DataError, NnbenchError
from nnbench.options import Option

NAME = "mnist1d"
N_CLASSES = 10
# The package's fixed arguments (get_dataset_args), not options: changing them changes
# the problem's shape or the templates' support, which no published result used.
TEMPLATE_LEN = 12
PADDING = (36, 60)
FINAL_SEQ_LENGTH = 40
TRAIN_SPLIT = 0.8
EPS = 1e-8  # added to the template before padding so that only the padding is exactly 0

# The ten digit templates, copied from mnist1d 0.0.2.post1 (mnist1d/data.py,
# get_templates), Copyright Sam Greydanus, Apache License 2.0.
TEMPLATES = (
    (5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5),
    (5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5),
    (5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5),
    (5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5),
    (5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5),
    (5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5),
    (5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5),
    (5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5),
    (5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5),
    (5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5),
)

# Bump when the generator's output changes: cached arrays of another version are rebuilt.
GENERATOR = "nnbench-mnist1d-1 (mnist1d 0.0.2.post1 make_dataset)"
FOLDER = "mnist1d"
# a damaged cache is never used nor refused: the arrays are made again, and said so
FIX = "generating MNIST-1D again (offline, about a second)"


def templates() -> np.ndarray:
    """The templates as the package normalises them: whitened, starting at 0, divided by 6."""
    x = np.asarray(TEMPLATES, dtype=np.float64)
    x -= x.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]
    return x / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    # np.interp gives the same bits as the package's scipy interp1d(kind="linear") here
    # (checked against the package), at half the cost
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _transform(x: np.ndarray, rng: np.random.RandomState, opts: Mapping[str, Any]) -> np.ndarray:
    """One example from one template: the package's ``transform``, its draws in its order."""
    low, high = PADDING
    pad = low + int(rng.rand() * (high - low + 1))
    new_x = np.concatenate([x + EPS, np.zeros(pad)])
    new_x = _resample(new_x, TEMPLATE_LEN + high)
    new_x *= 1 + opts["scale_coeff"] * (rng.rand() - 0.5)
    k = rng.choice(opts["max_translation"])
    new_x = np.concatenate([new_x[-k:], new_x[:-k]])
    # correlated noise where the signal is not (the padding), then iid noise everywhere;
    # written as the package writes it so that signed zeros and sums come out the same
    mask = new_x != 0
    corr = gaussian_filter(opts["corr_noise_scale"] * rng.randn(*new_x.shape), 2)
    new_x = mask * new_x + (1 - mask) * corr
    new_x = new_x + opts["iid_noise_scale"] * rng.randn(*new_x.shape)
    coeff = opts["shear_scale"] * (rng.rand() - 0.5)
    new_x = new_x - coeff * np.linspace(-0.5, 0.5, len(new_x))
    return _resample(new_x, FINAL_SEQ_LENGTH)


def make_mnist1d(
    n_samples: int = 5000,
    seed: int = 42,
    scale_coeff: float = 0.4,
    max_translation: int = 48,
    corr_noise_scale: float = 0.25,
    iid_noise_scale: float = 2e-2,
    shear_scale: float = 0.75,
) -> tuple[Split, Split]:
    """The package's ``make_dataset`` arrays: ``((x, y), (x_test, y_test))``, float64 and int64.

    ``n_samples`` is rounded down to a multiple of 10 (equal classes), as the package does.
    """
    if max_translation < 1:
        raise DataError(f"mnist1d: max_translation={max_translation} must be at least 1")
    opts = {
        "scale_coeff": scale_coeff,
        "max_translation": max_translation,
        "corr_noise_scale": corr_noise_scale,
        "iid_noise_scale": iid_noise_scale,
        "shear_scale": shear_scale,
    }
    rng = np.random.RandomState(seed)  # the stream np.random.seed(seed) starts
    xs, ys = [], []
    per_class = n_samples // N_CLASSES
    for label, template in enumerate(templates()):
        for _ in range(per_class):
            xs.append(_transform(template, rng, opts))
            ys.append(label)
    shuffle = rng.permutation(len(ys))
    X = np.stack(xs)[shuffle]
    y = np.asarray(ys, dtype=np.int64)[shuffle]
    X = (X - X.mean()) / X.std()
    cut = int(len(y) * TRAIN_SPLIT)
    return (X[:cut], y[:cut]), (X[cut:], y[cut:])


def split_mnist1d(
    train: Split, test: Split, valid_fraction: float, seed: int
) -> tuple[Split, Split, Split]:
    """Train, validation, test: the validation rows a seeded choice of the package's
    training rows (both parts kept in the package's order); the test split untouched."""
    X, y = train
    n_valid = max(1, round(valid_fraction * len(y)))
    chosen = np.random.default_rng(seed).permutation(len(y))
    valid_rows, train_rows = np.sort(chosen[:n_valid]), np.sort(chosen[n_valid:])
    return (X[train_rows], y[train_rows]), (X[valid_rows], y[valid_rows]), test


def _generate(options: Mapping[str, Any]) -> tuple[Split, Split, Split]:
    gen = {k: v for k, v in options.items() if k != "valid_fraction"}
    train, test = make_mnist1d(**gen)
    return split_mnist1d(train, test, options["valid_fraction"], options["seed"])


SPLITS = ("train", "valid", "test")


def _folder(request: LoadRequest) -> ManagedFolder:
    # one folder per option set: the default set is cache/mnist1d/mnist1d
    return ManagedFolder(
        cache_dir(request.data_dir) / FOLDER / MNIST1D.content_id(request), fix=FIX
    )


def _write(folder: ManagedFolder, splits: tuple[Split, Split, Split], options: Mapping) -> None:
    files = {}
    for name, (X, y) in zip(SPLITS, splits):
        for suffix, arr in (("X", X), ("y", y)):
            files[f"{name}_{suffix}.npy"] = functools.partial(
                np.save, arr=np.ascontiguousarray(arr), allow_pickle=False
            )
    folder.write(files, {"generator": GENERATOR, "options": dict(options)})


def _cached_splits(
    folder: ManagedFolder, options: Mapping, mmap: bool, progress: Progress | None
) -> tuple[Split, Split, Split] | None:
    """The cached splits if the folder holds this generator's, for these options, with
    every checksum holding; None (said in one line when damaged) otherwise."""
    try:
        manifest = folder.manifest()
        if manifest is None:
            return None
        if manifest.get("generator") != GENERATOR or manifest.get("options") != dict(options):
            return None  # another version's or another option set's: generated anew
        folder.verify(manifest)
        return tuple(  # type: ignore[return-value]
            tuple(
                np.load(
                    folder.folder / f"{name}_{suffix}.npy",
                    mmap_mode="r" if mmap else None,
                    allow_pickle=False,
                )
                for suffix in "Xy"
            )
            for name in SPLITS
        )
    except DataError as exc:
        say(progress, str(exc))
    except (OSError, ValueError) as exc:  # a file its sum matched, yet unreadable
        say(progress, str(folder.damaged(str(exc))))
    return None


def load_mnist1d(request: LoadRequest, force: bool = False) -> tuple[Split, Split, Split]:
    """The splits for ``request.options``: from the cache when it holds them verified,
    else generated and written there (kept in memory only if the cache is not writable)."""
    options = request.options
    folder = _folder(request)
    if not force:
        cached = _cached_splits(folder, options, request.mmap, request.progress)
        if cached is not None:
            return cached
    splits = _generate(options)
    try:
        _write(folder, splits, options)
    except NnbenchError as exc:
        # generated data needs no cache to be right: run on, and say why it was not kept
        say(request.progress, f"{exc} (MNIST-1D is used from memory)")
    return splits


def _load(request: LoadRequest) -> Dataset:
    train, valid, test = load_mnist1d(request)
    return Dataset(NAME, train, valid, test, N_CLASSES)


def _fetch(
    data_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: Progress | None = None,
    show_bar: bool = False,
) -> Path:
    """``nnbench data fetch mnist1d``: generate the default option set into the cache."""
    request = LoadRequest(data_dir, progress=progress, options=MNIST1D.with_defaults({}))
    load_mnist1d(request, force=force)
    say(progress, f"MNIST-1D generated in {_folder(request).folder}")
    return cache_dir(data_dir)


def _cached(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """Every option set's files in the cache, with their manifest's sums."""
    root = cache_dir(data_dir)
    base = root / FOLDER
    if not base.is_dir():
        return []
    files: list[dict] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()):
        files += managed_entries(root, folder, derived=True)
    return files


def _prepared(request: LoadRequest, dtype: str) -> Path | None:
    """The cache's float64 arrays (the package's values), verified when loaded, for
    float64 runs to map as they are; other dtypes get a shared copy."""
    folder = _folder(request)
    if np.dtype(dtype) == np.float64 and folder.manifest_path.is_file():
        return folder.folder
    return None


OPTIONS = {
    "n_samples": Option(
        5000,
        "examples (rounded down to a multiple of 10), 80% train+valid, 20% test",
        low=100,
        high=200_000,
        kind=int,
    ),
    "seed": Option(42, "the generator's seed (also draws the validation rows)", low=0, kind=int),
    "scale_coeff": Option(0.4, "random scaling of each signal, +-half of it", low=0.0, high=2.0),
    "max_translation": Option(48, "largest shift, in points", low=1, high=72, kind=int),
    "corr_noise_scale": Option(0.25, "correlated noise off the signal", low=0.0, high=5.0),
    "iid_noise_scale": Option(0.02, "iid Gaussian noise on every point", low=0.0, high=5.0),
    "shear_scale": Option(0.75, "random linear shear, +-half of it", low=0.0, high=10.0),
    "valid_fraction": Option(
        0.2, "of the package's training split held out for validation", low=0.05, high=0.5
    ),
}

MNIST1D = register(
    DatasetInfo(
        NAME,
        _load,
        "MNIST-1D (Greydanus 2020), generated offline as the mnist1d package does: "
        "3,200 train, 800 validation, 1,000 test signals of 40 points",
        shape=(FINAL_SEQ_LENGTH, N_CLASSES),
        options=OPTIONS,
        fetch=_fetch,
        cached=_cached,
        prepared=_prepared,
    )
)
