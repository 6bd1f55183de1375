"""Where the follower finds its shipped bundle and index by default."""

from __future__ import annotations

from pathlib import Path

from .errors import BundleError

REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout (the one definition; training and benchmarks import it)
DEFAULT_BUNDLE = "exported/default"
DEFAULT_INDEX_NAME = "chorales.index.npz"
# where an installed wheel carries the default bundle (setup.py maps exported/default there)
SHIPPED_BUNDLE = Path(__file__).resolve().parent / "shipped" / "default"


def resolve_bundle(path) -> Path:
    """``path`` as given, else relative to the checkout, else (for the default bundle) the copy
    installed with the package, so that the defaults work from any folder, checkout or not."""
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    if (REPO_ROOT / p).exists():
        return REPO_ROOT / p
    if p == Path(DEFAULT_BUNDLE) and SHIPPED_BUNDLE.is_dir():
        return SHIPPED_BUNDLE
    return p


def resolve_index(index, bundle_dir: Path) -> Path:
    """The index given, else the one shipped in the bundle folder."""
    if index:
        return resolve_bundle(index)
    shipped = sorted(Path(bundle_dir).glob("*.index.npz"))
    preferred = Path(bundle_dir) / DEFAULT_INDEX_NAME
    if preferred.is_file():
        return preferred
    if len(shipped) == 1:
        return shipped[0]
    if not shipped:
        raise BundleError(f"{bundle_dir} holds no *.index.npz; give --index, or build one: "
                          f"follower index build CORPUS -o {bundle_dir}/{DEFAULT_INDEX_NAME} --bundle {bundle_dir}")
    raise BundleError(f"{bundle_dir} holds several indexes ({', '.join(p.name for p in shipped)}); "
                      "choose one with --index")
